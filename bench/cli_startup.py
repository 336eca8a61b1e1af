"""Start-up time of the ``graft`` command line against ``python -c "import torch"``.

``graft --help``, ``graft --version`` and ``graft CMD --help`` build their parsers without
importing torch; this times each (best of ``--repeat`` runs, fresh processes) next to a bare
``import torch`` and prints the ratio.

    python bench/cli_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

COMMANDS = ["fit", "adapt", "predict", "evaluate", "models", "demo", "lr-find", "rank",
            "similarity", "advise", "cache", "compare"]  # fmt: skip


def best_of(argv: list[str], repeat: int) -> float:
    """The fastest wall time of ``repeat`` fresh runs of ``argv``, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (best kept)")
    args = parser.parse_args()
    torch_s = best_of([sys.executable, "-c", "import torch"], args.repeat)
    label = 'python -c "import torch"'
    print(f"{label:<28} {torch_s:6.2f}s")
    graft = [sys.executable, "-m", "graft.cli"]
    runs = [["--help"], ["--version"]] + [[c, "--help"] for c in COMMANDS]
    worst = 0.0
    for extra in runs:
        seconds = best_of([*graft, *extra], args.repeat)
        worst = max(worst, seconds)
        print(f"{'graft ' + ' '.join(extra):<28} {seconds:6.2f}s  ({seconds / torch_s:.2f}x torch)")
    print(f"slowest graft start-up / import torch: {worst / torch_s:.2f}")


if __name__ == "__main__":
    main()
