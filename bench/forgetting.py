"""Forgetting: target accuracy and retention of plain fine-tuning against EWC, L2-SP and LwF.

Run by hand::

    OMP_NUM_THREADS=2 python bench/forgetting.py [--seeds 0 1 2] [--arms plain l2sp=10 l2sp=100 ewc=10]

Every arm fine-tunes the bundled EfficientNet-Lite0 (ImageNet) on real handwritten digits
(scikit-learn, written as PNGs) with the same plan (a head stage on stored features, then every
layer group fine-tuned, BatchNorm frozen), seed and data; the arms differ only in
``regularize=``. The baseline is plain fine-tuning measured in the same run. For each arm it reports the digits test accuracy
and the retention of the ImageNet task: top-1 agreement and KL between the original model and
the fine-tuned backbone + original ImageNet head, on (a) the digits test images (graft's default
reference set) and (b) natural images: 64 random crops of the two photographs that ship with
scikit-learn (``load_sample_images``), a small source-like set. Prints mean and spread over
seeds and the ratios to plain fine-tuning. One seed takes about 5 minutes on 2 CPU cores.

Defaults (per class 20 digits at 48 px, 10 head epochs at lr 1e-2 on stored features, then 3
epochs of every group at lr 1e-4) keep a run short; ``--strength NAME=X`` sets a method's main
strength (EWC ``lam``, L2-SP ``alpha``, LwF ``lam``), default graft's own; an arm written
``NAME=X`` runs that method at strength X, so one run compares several strengths. The first arm
also pays for storing the features (its time is not comparable). Quick setting used to pick
graft's defaults: ``--per-class 15 --head-epochs 5 --epochs 5 --arms l2sp=1 plain l2sp=10
l2sp=100 ewc=1 ewc=10 ewc=100``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ARMS: dict[str, dict[str, Any]] = {
    "plain": {},
    "ewc": {"regularize": "ewc"},
    "l2sp": {"regularize": "l2sp"},
    "lwf": {"regularize": "lwf"},
}
RATIO_KEYS = ("accuracy", "agree_digits", "agree_natural")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-class", type=int, default=20, help="digits per class (70/15/15 split)")
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--head-epochs", type=int, default=10, help="head stage, on stored features")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (every group)")
    p.add_argument("--lr", type=float, default=1e-2, help="head stage rate")
    p.add_argument("--lr-factor", type=float, default=0.01, help="fine-tuning rate = lr x this")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument(
        "--arms", nargs="+", default=list(ARMS),
        help=f"from {', '.join(ARMS)}; NAME=X sets that arm's strength (e.g. l2sp=10 ewc=100)",
    )  # fmt: skip
    p.add_argument(
        "--strength", action="append", default=[], help="NAME=X, e.g. ewc=10 (default: graft's)"
    )
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def natural_crops(folder: Path, n: int = 64, size: int = 160, seed: int = 0) -> Path:
    """``n`` random square crops of scikit-learn's two sample photographs, as PNG files."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    photos = load_sample_images().images
    for i in range(n):
        photo = photos[i % len(photos)]
        side = int(rng.integers(size // 2, size * 2))
        top = int(rng.integers(0, photo.shape[0] - side))
        left = int(rng.integers(0, photo.shape[1] - side))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crop.resize((size, size)).save(folder / f"crop_{i:03d}.png")
    return folder


def run_arm(arm: str, data: Path, natural: Path, seed: int, args: argparse.Namespace) -> dict:
    import graft
    from graft.protect import measure_retention

    name, _, given = arm.partition("=")
    options = dict(ARMS[name])
    strengths = dict(s.split("=") for s in args.strength)
    if given or name in strengths:
        options["regularize_strength"] = float(given or strengths[name])
    original = graft.backbone("efficientnet_lite0", image_size=args.image_size)
    start = time.perf_counter()
    model = graft.fit(
        data,
        backbone="efficientnet_lite0",
        image_size=args.image_size,
        strategy="two_stage",
        # Every layer group fine-tuned; BatchNorm kept in inference mode (its parameters
        # frozen), the usual choice for batches of 32 small images.
        strategy_options={
            "fraction": 1.0,
            "lr_factor": args.lr_factor,
            "head_epochs": args.head_epochs,
            "freeze_patterns": ("*bn*",),
        },
        epochs=args.epochs,
        lr=args.lr,
        seed=seed,
        batch_size=32,
        progress=False,
        cache_dir=str(data.parent / "cache"),
        log=lambda s: None,
        **options,
    )
    seconds = time.perf_counter() - start
    from graft.data.unlabeled import load_unlabeled, unlabeled_samples

    nat = measure_retention(original, model, unlabeled_samples(load_unlabeled(natural)))
    return {
        "accuracy": model.info["metrics"]["test"]["accuracy"],
        "agree_digits": model.info["retention"]["top1_agreement"],
        "kl_digits": model.info["retention"]["mean_kl"],
        "agree_natural": nat["top1_agreement"],
        "kl_natural": nat["mean_kl"],
        "seconds": seconds,
    }


def summarise(results: dict[str, list[dict]]) -> None:
    keys = ["accuracy", "agree_digits", "kl_digits", "agree_natural", "kl_natural", "seconds"]
    print("\n| arm | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for arm, runs in results.items():
        cells = []
        for k in keys:
            vals = [r[k] for r in runs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.3f} ± {sd:.3f}")
        print(f"| {arm} | " + " | ".join(cells) + " |")
    if "plain" not in results:
        return
    base = {k: statistics.mean(r[k] for r in results["plain"]) for k in keys}
    print("\nratio to plain fine-tuning (accuracy, agreement on digits, agreement on natural):")
    for arm, runs in results.items():
        mean = {k: statistics.mean(r[k] for r in runs) for k in keys}
        ratios = [mean[k] / base[k] if base[k] else float("nan") for k in RATIO_KEYS]
        print(f"  {arm:<6} " + "  ".join(f"{r:.3f}" for r in ratios))


def main() -> None:
    import torch

    from graft.data.digits import write_digits

    args = parse_args()
    unknown = [a for a in args.arms if a.partition("=")[0] not in ARMS]
    if unknown:
        raise SystemExit(f"--arms: unknown {unknown}; choose from {', '.join(ARMS)} (NAME=X)")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="graft-forgetting-") as tmp:
        root = Path(tmp)
        data = write_digits(root / "digits", per_class=args.per_class, seed=0, splits=True)
        natural = natural_crops(root / "natural")
        results: dict[str, list[dict]] = {arm: [] for arm in args.arms}
        for seed in args.seeds:
            for arm in args.arms:
                r = run_arm(arm, data, natural, seed, args)
                results[arm].append(r)
                line = "  ".join(f"{k} {v:.4f}" for k, v in r.items())
                print(f"seed {seed} {arm:<6} {line}", flush=True)
        summarise(results)


if __name__ == "__main__":
    main()
