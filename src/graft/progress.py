"""A line every ~30 s for logs that no progress bar reaches (a redirected stdout, a CI job).

In a terminal tqdm's bars show progress; written to a file they do not, and a long step would
leave the log silent for many minutes. A :class:`Heartbeat` writes ``what: step i/n, elapsed
…, about … left`` at most every :data:`HEARTBEAT_S` seconds when stderr is not a terminal.
Every long step uses it: the training epochs, the frozen feature pass (the advisor's measuring
included), the final evaluation and prediction, and the retention pass. :func:`beating` wraps
an iterable of batches in one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

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


def to_stderr(line: str) -> None:
    """Where heartbeat lines go when the caller has no log of its own: beside tqdm's bars."""
    print(line, file=sys.stderr, flush=True)


class Heartbeat:
    """Call :meth:`tick` after each step; it logs when the interval has passed.

    Args:
        what: the step's name in the line (``head epoch 3``, ``features``).
        total: the number of steps (batches, or files with ``unit``).
        log: where lines go (default: stderr).
        enabled: None = only when stderr is not a terminal (tqdm's bar covers a terminal).
        unit: what a step is (``step``, ``file``, ``batch``).
    """

    def __init__(
        self,
        what: str,
        total: int,
        log: Callable[[str], None] | None = None,
        enabled: bool | None = None,
        unit: str = "step",
    ) -> None:
        self.what, self.total, self.unit = what, max(int(total), 1), unit
        self.log = log if log is not None else to_stderr
        self.enabled = (not sys.stderr.isatty()) if enabled is None else enabled
        self.start = self.last = time.perf_counter()
        self.done = 0

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps are finished (:meth:`tick` with the running count)."""
        self.done += steps
        self.tick(self.done)

    def tick(self, done: int) -> None:
        """``done`` steps are finished; log a line when ``HEARTBEAT_S`` passed since the last."""
        now = time.perf_counter()
        if not self.enabled or now - self.last < HEARTBEAT_S:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / max(done, 1) * (self.total - done)
        self.log(
            f"  {self.what}: {self.unit} {done}/{self.total}, {format_seconds(elapsed)} elapsed, "
            f"about {format_seconds(left)} left"
        )


def beating(
    items: Iterable[T],
    what: str,
    total: int,
    log: Callable[[str], None] | None = None,
    *,
    bar: bool = False,
) -> Iterator[T]:
    """Yield ``items`` (``total`` of them), with a :class:`Heartbeat` ticking after each.

    Args:
        items: the batches.
        what: the step's name in the line.
        total: how many batches are expected (for the estimate of the time left).
        log: where heartbeat lines go (default: stderr).
        bar: also show a tqdm bar (only in a terminal), for steps that have none of their own.
    """
    if bar:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=f"  {what}", total=total, leave=False, disable=None)
    beat = Heartbeat(what, total, log, unit="batch")
    for item in items:
        yield item
        beat.advance()
