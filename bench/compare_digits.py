"""``graft compare`` on scikit-learn's real handwritten digits with the bundled backbone.

Every arm trains on the same splits with the same epochs: the from-scratch baselines (the
same EfficientNet-Lite0 randomly initialised, and a small CNN at the data's 32 px) are the
baseline measured in the same run; transfer arms start from the bundled ImageNet weights.
Prints the table, the verdict, the ratio of the best transfer arm's test accuracy to the best
from-scratch arm's, the time, and writes the HTML report (screenshot it with
``python bench/report_screenshot.py --html OUT/compare.html``).

    python bench/compare_digits.py [out_dir] [--epochs N] [--image-size PX] [--curve]

``--curve`` adds a data-efficiency curve (fractions 0.1, 0.25, 0.5, 1 x 2 seeds) for the
cheap arms (feature extraction on stored features and the small CNN).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    import graft
    from graft.data.digits import write_digits

    p = argparse.ArgumentParser()
    p.add_argument("out", nargs="?", default="bench/out/compare")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--curve", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    data = write_digits(out / "digits")
    started = time.perf_counter()
    result = graft.compare(
        data,
        backbone="efficientnet_lite0",
        budget="quick",
        epochs=args.epochs,
        image_size=args.image_size,
        fractions=[0.1, 0.25, 0.5, 1.0] if args.curve else None,
        seeds=2 if args.curve else None,
        curve_arms=["feature_extraction", "small_cnn"] if args.curve else None,
        cache_dir=str(out / "cache"),
        report=out / "compare.html",
    )
    elapsed = time.perf_counter() - started
    print()
    print(result.table())
    print()
    print(result.verdict)
    key = f"test {result.metric}"
    best = {
        kind: max(r[key] for r in result.rows if r["kind"] == kind)
        for kind in ("transfer", "scratch")
    }
    print(
        f"ratio (best transfer / best from scratch, {key}): "
        f"{best['transfer'] / best['scratch']:.3f}  "
        f"({best['transfer']:.4f} / {best['scratch']:.4f})"
    )
    for row in result.curve_runs:
        print(
            f"curve  {row['strategy']:<20} n_train {row['n_train']:>5}  seed {row['seed']}  "
            f"{result.metric} {row[result.metric]:.4f}"
        )
    print(f"time: {elapsed:.1f}s   report: {out / 'compare.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
