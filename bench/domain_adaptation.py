"""Domain adaptation on a real shift, offline: printed digits -> handwritten digits.

Run by hand:  python bench/domain_adaptation.py [--seeds 3] [--per-class 50] [--epochs 10]

Source (labeled): digits printed in the fonts that ship with matplotlib (DejaVu, STIX, Computer
Modern; regular, bold, italic, mono, serif), each rendered with random placement, scale,
rotation and stroke width, dark ink on white, written as PNG. Target: scikit-learn's 1,797
handwritten digits (``graft.data.digits``, 8x8 scans upscaled), split 70/15/15: the training
part gives the unlabeled target set (``--unlabeled`` random images, passed as a table of paths
without labels), the test part (270 images) gives the target accuracy, read only to score.

Every method trains the same backbone with the same plan, data, seed and budget; the baseline
is source-only training measured in the same run. Prints target accuracy per method (mean and
standard deviation over seeds, each seed's value) and the ratio to source-only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf",
    "cmtt10.ttf", "cmb10.ttf",
)  # fmt: skip
METHODS = ("source_only", "dann", "coral", "mmd", "rotation")


def font_files() -> list[Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [folder / name for name in FONTS if (folder / name).is_file()]


def render_digit(digit: int, font: Path, size: int, rng: np.random.Generator) -> Any:
    """One printed digit: random scale, stroke width, rotation and placement, then downscaled."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = 4 * size  # draw large, downscale: antialiased strokes like a scan
    face = ImageFont.truetype(str(font), int(canvas * rng.uniform(0.55, 0.9)))
    ink = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(ink)
    stroke = int(rng.integers(0, max(2, canvas // 24)))
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=face, stroke_width=stroke)
    x = (canvas - (right - left)) / 2 - left + rng.uniform(-0.12, 0.12) * canvas
    y = (canvas - (bottom - top)) / 2 - top + rng.uniform(-0.12, 0.12) * canvas
    draw.text((x, y), str(digit), fill=255, font=face, stroke_width=stroke, stroke_fill=255)
    ink = ink.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC)
    paper = Image.fromarray(255 - np.asarray(ink))
    return paper.resize((size, size), Image.Resampling.LANCZOS)


def write_printed_digits(root: Path, per_class: int, seed: int, size: int) -> Path:
    """``root/<digit>/*.png``: ``per_class`` printed images per digit (idempotent)."""
    marker = root / ".printed.json"
    params = f"{per_class}:{seed}:{size}:{len(FONTS)}"
    if marker.is_file() and marker.read_text() == params:
        return root
    shutil.rmtree(root, ignore_errors=True)  # other settings: start afresh
    rng = np.random.default_rng(seed)
    fonts = font_files()
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            font = fonts[int(rng.integers(len(fonts)))]
            render_digit(digit, font, size, rng).save(root / str(digit) / f"p_{i:04d}.png")
    marker.write_text(params)
    return root


def unlabeled_table(folder: Path, n: int, work: Path) -> Path:
    """A table of ``n`` random target paths (no label column): the unlabeled target set."""
    import pandas as pd

    files = sorted(folder.rglob("*.png"))
    pick = np.random.default_rng(0).choice(len(files), min(n, len(files)), replace=False)
    table = work / f"unlabeled-{n}.csv"
    pd.DataFrame({"path": [str(files[i]) for i in sorted(pick)]}).to_csv(table, index=False)
    return table


def run_one(method: str, seed: int, args: argparse.Namespace, paths: dict[str, Path]) -> float:
    import graft

    adapt: dict[str, Any] = {}
    if method != "source_only":
        options = {"epochs": args.rotation_epochs, "lr": 1e-3} if method == "rotation" else {}
        options.update({"weight": args.weight} if method in ("coral", "mmd") else {})
        options.update({"hidden": 256} if method == "dann" else {})
        adapt = {"unlabeled": paths["unlabeled"], "adapt": method, "adapt_options": options}
    test = paths["target"] / "test"  # labeled, read only to score
    model = graft.fit(
        paths["source"],
        backbone=args.backbone,
        pretrained=not args.backbone.startswith("small_cnn"),
        image_size=args.image_size,
        strategy=args.strategy,
        strategy_options={"top": args.top, "lr_factor": 0.3}
        if args.strategy == "two_stage"
        else {},
        epochs=args.epochs,
        test_fraction=0.0,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=seed,
        cache_dir=str(paths["cache"]),
        progress=False,
        log=lambda s: None,
        **adapt,
    )
    return float(model.evaluate(test)["accuracy"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--per-class", type=int, default=50, help="printed source images per digit")
    p.add_argument("--unlabeled", type=int, default=600, help="unlabeled target images")
    p.add_argument("--backbone", default="small_cnn_gray", help="small_cnn* train from scratch")
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--strategy", default="full")
    p.add_argument("--epochs", type=int, default=10, help="epochs per stage")
    p.add_argument("--top", type=int, default=3, help="two_stage: backbone groups fine-tuned")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--weight", type=float, default=1.0, help="CORAL/MMD loss weight")
    p.add_argument("--rotation-epochs", type=int, default=1)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", help="data and cache folder (default: a temporary one)")
    args = p.parse_args()

    import torch

    from graft.data.digits import write_digits

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TQDM_DISABLE", "1")
    work = Path(args.work or tempfile.mkdtemp(prefix="graft-da-"))
    paths = {
        "source": write_printed_digits(work / "printed", args.per_class, 0, args.image_size),
        "target": write_digits(work / "handwritten", splits=True, image_size=args.image_size),
        "cache": work / "cache",
    }
    paths["unlabeled"] = unlabeled_table(paths["target"] / "train", args.unlabeled, work)
    print(f"source: {10 * args.per_class} printed digits ({len(font_files())} fonts); target: "
          f"{args.unlabeled} unlabeled handwritten (a table of paths), "
          f"test {sum(1 for _ in (paths['target'] / 'test').rglob('*.png'))}; {args.backbone} "
          f"at {args.image_size}px, {args.strategy}, {args.epochs} epochs per stage")  # fmt: skip
    results: dict[str, list[float]] = {}
    started, cpu = time.perf_counter(), time.process_time()
    for method in args.methods.split(","):
        t, c = time.perf_counter(), time.process_time()
        results[method] = [run_one(method, s, args, paths) for s in range(args.seeds)]
        accs = ", ".join(f"{a:.3f}" for a in results[method])
        print(
            f"  {method:<12} {time.perf_counter() - t:5.0f}s wall, "
            f"{time.process_time() - c:5.0f}s CPU  ({accs})",
            flush=True,
        )
    report(results)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"total {wall:.0f}s wall, {cpu:.0f}s CPU ({os.getloadavg()[0]:.1f} load at the end)")


def report(results: dict[str, list[float]]) -> None:
    base = statistics.mean(results["source_only"]) if "source_only" in results else None
    print(f"\n{'method':<12} {'target acc':>10} {'± sd':>6} {'vs source-only':>15}  per seed")
    for method, accs in results.items():
        mean = statistics.mean(accs)
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        ratio = f"{mean / base:.2f}x" if base else "-"
        seeds = " ".join(f"{a:.3f}" for a in accs)
        print(f"{method:<12} {mean:>10.3f} {sd:>6.3f} {ratio:>15}  {seeds}")


if __name__ == "__main__":
    main()
