"""`graft rank` against actually fine-tuning every candidate; run by hand, prints a table.

    python bench/rank_vs_finetune.py [--data digits|fmnist] [--per-class 30] [--head-epochs 15]
        [--epochs 8] [--seeds 3] [--lr 3e-3 | --lr 1e-3,3e-3,1e-2] [--candidates NAME@SIZE,...]
        [--rank-repeats 3]

On real data (scikit-learn digits or Fashion-MNIST, written as an image folder), candidate backbones
are ranked by LogME on stored features (`graft.rank`, fresh feature store, so its time includes
the one backbone pass; ``--rank-repeats`` times, each into a fresh store: the first call is the
ratio's, the median of all is printed beside it), then each is fine-tuned with graft's two-stage
plan (head on stored features, then the top two groups; 8 fine-tuning epochs, the suite's budget
per arm) with ``--seeds`` seeds in the same run, and its mean test accuracy measured (a
candidate's seeds share one feature store: its frozen pass is paid once). Printed: the time of the ranking against the
time of the fine-tuning runs (the ratio), and Kendall's tau and the weighted tau (as TLlib
reports it, :func:`graft.measure.ranking.weighted_tau`) between the scores and the mean
fine-tuned accuracies (1 = the ranking orders the candidates exactly as fine-tuning does).
timm is imported before either is timed (a one-off cost of the process, not of ranking). Both
wall and CPU seconds (user + system, this process) are printed: CPU seconds hardly move with
other work on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

#: The real candidates: three ImageNet backbones at two sizes each, and a random Lite0.
CANDIDATES = (
    "efficientnet_lite0@96",
    "efficientnet_lite0@64",
    "efficientnet_lite1@96",
    "efficientnet_lite1@64",
    "efficientnet_lite2@96",
    "efficientnet_lite2@64",
    "efficientnet_lite0@random@64",
)


def main() -> None:
    import graft
    from graft.data.digits import write_digits
    from graft.data.fashion_mnist import write_fashion_mnist
    from graft.measure.ranking import rank_agreement
    from graft.workflows.measure import parse_candidate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--head-epochs", type=int, default=15, help="head stage, on features")
    parser.add_argument("--epochs", type=int, default=8, help="fine-tuning stage, on images")
    parser.add_argument("--seeds", type=int, default=3, help="fine-tuning runs per candidate")
    parser.add_argument(
        "--lr",
        default="3e-3",
        help="learning rate, or a comma-separated grid (each candidate is fine-tuned at every "
        "rate, and scored at the one with the best mean validation accuracy, as the LogME "
        "paper's protocol tunes each candidate)",
    )
    parser.add_argument("--data", choices=["digits", "fmnist"], default="digits")
    parser.add_argument(
        "--rank-repeats",
        type=int,
        default=3,
        help="rankings timed, each into a fresh store (the first call's time is the ratio's; "
        "the median is printed too: a ranking is seconds long, and one run is noisy)",
    )
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated")
    args = parser.parse_args()
    candidates = args.candidates.split(",")
    lrs = [float(x) for x in args.lr.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="graft-bench-rank-"))
    if args.data == "digits":
        data = write_digits(tmp / "digits", per_class=args.per_class, seed=0)
    else:
        data = write_fashion_mnist(tmp / "fmnist", per_class=args.per_class, test=2000)
    import timm  # noqa: F401  (the process's one-off import, charged to neither side)

    walls, cpus = [], []
    for repeat in range(args.rank_repeats):  # a fresh store each time: every pass is paid
        start, cpu0 = time.perf_counter(), time.process_time()
        ranking = graft.rank(data, backbones=candidates, cache_dir=str(tmp / f"rank-{repeat}"))
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu0)
    rank_s, rank_cpu = walls[0], cpus[0]
    print(ranking.table(), flush=True)
    print("graft rank, each call (s): " + ", ".join(f"{w:.2f}" for w in walls), flush=True)
    scores = {r.backbone: r.score for r in ranking.rows}
    accs, tune_s, cpu0 = {}, 0.0, time.process_time()
    for cand in candidates:
        name, pretrained, size = parse_candidate(cand)
        t0 = time.perf_counter()
        by_lr: dict[float, tuple[list[float], list[float]]] = {}
        for lr in lrs:
            vals, tests = by_lr.setdefault(lr, ([], []))
            for seed in range(args.seeds):
                model = graft.fit(
                    data, backbone=name, pretrained=pretrained, image_size=size,
                    strategy="two_stage", strategy_options={"head_epochs": args.head_epochs},
                    epochs=args.epochs, lr=lr, seed=seed,
                    cache_dir=str(tmp / f"fit-store-{len(accs)}"), progress=False,
                    log=lambda _: None,
                )  # fmt: skip
                tests.append(model.info["metrics"]["test"]["accuracy"])
                vals.append(model.info["metrics"]["val"]["accuracy"])
        best_lr = max(lrs, key=lambda lr: float(np.mean(by_lr[lr][0])))  # on validation
        vals, tests = by_lr[best_lr]
        seconds = time.perf_counter() - t0
        tune_s += seconds
        accs[cand] = float(np.mean(tests))
        at = f" at lr {best_lr:g}" if len(lrs) > 1 else ""
        print(
            f"fine-tuned {cand:<34} accuracy val {np.mean(vals):.3f} test {accs[cand]:.3f} "
            f"± {np.std(tests):.3f} ({args.seeds} seeds{at})  {seconds:6.1f}s",
            flush=True,
        )
    tune_cpu = time.process_time() - cpu0
    agree = rank_agreement([scores[c] for c in candidates], [accs[c] for c in candidates])
    best_rank = ranking.best.backbone if ranking.best else None
    best_tuned = max(accs, key=lambda c: accs[c])
    print(
        f"\n{args.data} {args.per_class}/class, {len(candidates)} candidates, two-stage: "
        f"{args.head_epochs} head epochs on features, {args.epochs} fine-tuning epochs, lr {args.lr}, "
        f"{args.seeds} seeds"
    )
    print(
        f"graft rank: {rank_s:.1f}s   fine-tuning all: {tune_s:.1f}s   ratio {tune_s / rank_s:.1f}x"
        f"   (CPU: {rank_cpu:.1f}s vs {tune_cpu:.1f}s, {tune_cpu / rank_cpu:.1f}x)"
    )
    if len(walls) > 1:
        median = float(np.median(walls))
        print(
            f"graft rank, median of {len(walls)} calls: {median:.1f}s   ratio "
            f"{tune_s / median:.1f}x (the first call above also pays the process's warm-up)"
        )
    print(
        f"Kendall tau (LogME vs fine-tuned test accuracy): {agree.kendall:.2f} "
        f"(p = {agree.kendall_p:.2f}); weighted tau {agree.weighted:.2f}"
    )
    print(f"rank's pick: {best_rank}   fine-tuning's best: {best_tuned}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
