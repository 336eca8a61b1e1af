"""`graft rank` against actually fine-tuning every candidate; run by hand, prints a table.

    python bench/rank_vs_finetune.py [--per-class 30] [--head-epochs 15] [--epochs 2]

On real data (scikit-learn digits, written as an image folder), several candidate backbones
are ranked by LogME on stored features (`graft.rank`, fresh feature store, so its time includes
the one backbone pass), then each is fine-tuned with graft's two-stage plan (head on stored
features, then the top two groups) in the same run, and its test accuracy measured. Printed:
the time of the ranking against the time of the fine-tuning runs (the ratio), and Kendall's
tau between the scores and the fine-tuned accuracies (1 = the ranking orders the candidates
exactly as fine-tuning does).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

CANDIDATES = (
    "efficientnet_lite0@96",
    "efficientnet_lite0@64",
    "efficientnet_lite0@random@64",
    "timm:test_efficientnet@random@64",
    "timm:test_efficientnet@random@32",
)


def main() -> None:
    from scipy.stats import kendalltau

    import graft
    from graft.data.digits import write_digits
    from graft.workflows.measure import parse_candidate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--head-epochs", type=int, default=15, help="head stage, on features")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning stage, on images")
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="graft-bench-rank-"))
    data = write_digits(tmp / "digits", per_class=args.per_class, seed=0)
    start = time.perf_counter()
    ranking = graft.rank(data, backbones=list(CANDIDATES), cache_dir=str(tmp / "rank-store"))
    rank_s = time.perf_counter() - start
    print(ranking.table(), flush=True)
    scores = {r.backbone: r.score for r in ranking.rows}
    accs, tune_s = {}, 0.0
    for cand in CANDIDATES:
        name, pretrained, size = parse_candidate(cand)
        t0 = time.perf_counter()
        model = graft.fit(
            data, backbone=name, pretrained=pretrained, image_size=size, strategy="two_stage",
            strategy_options={"head_epochs": args.head_epochs}, epochs=args.epochs, lr=args.lr,
            cache_dir=str(tmp / f"fit-store-{len(accs)}"), progress=False,
            log=lambda _: None,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        tune_s += seconds
        accs[cand] = model.info["metrics"]["test"]["accuracy"]
        val = model.info["metrics"]["val"]["accuracy"]
        print(
            f"fine-tuned {cand:<34} accuracy val {val:.3f} test {accs[cand]:.3f}  {seconds:6.1f}s",
            flush=True,
        )
    tau, p = kendalltau([scores[c] for c in CANDIDATES], [accs[c] for c in CANDIDATES])
    best_rank = ranking.best.backbone if ranking.best else None
    best_tuned = max(accs, key=lambda c: accs[c])
    print(
        f"\ndigits {args.per_class}/class, {len(CANDIDATES)} candidates, two-stage: "
        f"{args.head_epochs} head epochs on features, {args.epochs} fine-tuning epochs, lr {args.lr}"
    )
    print(
        f"graft rank: {rank_s:.1f}s   fine-tuning all: {tune_s:.1f}s   ratio {tune_s / rank_s:.1f}x"
    )
    print(f"Kendall tau (LogME vs fine-tuned test accuracy): {tau:.2f} (p = {p:.2f})")
    print(f"rank's pick: {best_rank}   fine-tuning's best: {best_tuned}")


if __name__ == "__main__":
    main()
