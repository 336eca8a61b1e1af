"""A line every ~30 s for logs that no progress bar reaches (a redirected stdout, a CI job).

In a terminal tqdm's bars show progress; written to a file they do not, and a long epoch would
leave the log silent for many minutes. A :class:`Heartbeat` writes ``what: step i/n, elapsed
…, about … left`` at most every :data:`HEARTBEAT_S` seconds when stderr is not a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

#: Seconds between two heartbeat lines.
HEARTBEAT_S = 30.0


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``1h02m``."""
    s = round(max(seconds, 0.0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Heartbeat:
    """Call :meth:`tick` after each step; it logs when the interval has passed.

    Args:
        what: the step's name in the line (``head epoch 3``).
        total: the number of steps.
        log: where lines go.
        enabled: None = only when stderr is not a terminal (tqdm's bar covers a terminal).
    """

    def __init__(
        self, what: str, total: int, log: Callable[[str], None], enabled: bool | None = None
    ) -> None:
        self.what, self.total, self.log = what, max(int(total), 1), log
        self.enabled = (not sys.stderr.isatty()) if enabled is None else enabled
        self.start = self.last = time.perf_counter()

    def tick(self, done: int) -> None:
        """``done`` steps are finished; log a line when ``HEARTBEAT_S`` passed since the last."""
        now = time.perf_counter()
        if not self.enabled or now - self.last < HEARTBEAT_S:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / max(done, 1) * (self.total - done)
        self.log(
            f"  {self.what}: step {done}/{self.total}, {format_seconds(elapsed)} elapsed, "
            f"about {format_seconds(left)} left"
        )
