"""``graft demo``: the main job on an embedded default, offline, in a few minutes on a laptop CPU.

Writes scikit-learn's real handwritten digits as an image folder, transfers the bundled
ImageNet EfficientNet-Lite0 to them with graft's own default (``--strategy auto``: the advisor
measures the data at the demo's 64 px and picks the plan), and prints the plan, the test metrics on a
held-out split, the time taken, and a predict command to try. It ends by checking whether
transfer helped at all: the same splits, the same total epochs per arm, against a small CNN
trained from scratch and a linear probe (feature extraction), with the comparison table, a
data-efficiency curve (about 10 digits per class against all of them: where pretrained features
win and where they do not), a verdict that respects the test split's noise, and an HTML report.
"""

from __future__ import annotations

import time
from pathlib import Path

from graft.config import DEFAULT_BACKBONE, StrategyConfig
from graft.data import load
from graft.data.base import Dataset
from graft.data.digits import write_digits
from graft.evaluate.compare import Comparison
from graft.evaluate.compare import compare as run_compare
from graft.metrics import format_metrics
from graft.model import GraftModel
from graft.workflows.fit import fit

#: Epochs per arm, all its stages together: the advisor's plan splits them among its stages
#: (``total_epochs``), as every arm of the comparison does. At 12 the guard plan's fine-tuning
#: stage (6 epochs) beats its head on validation (0.963 against 0.929); at 10 it does not get
#: there (0.929 after 5 epochs) and is undone, a lost race that costs 75 s on a slow CPU.
DEMO_EPOCHS = 12
#: The demo's input size, given as ``--image-size`` is (the advisor keeps it and says so).
#: Left to itself the advisor picks 128 px for these 32 px digits (linear probe 0.955 against
#: 0.907 at 64 px), where fine-tuning every group costs about four times as much per epoch:
#: beyond the demo's few minutes on a laptop CPU. ``graft advise DIGITS`` shows that choice.
DEMO_IMAGE_SIZE = 64
#: The demo's reduced comparison: the fitted model (the ``auto`` arm) against these arms.
DEMO_ARMS = ("small_cnn", "feature_extraction")
#: The digits are 8x8 scans: at 16 px the small CNN sees every stroke at a quarter of the cost
#: (auto's race and the comparison's small_cnn arm both train it at this side).
DEMO_SMALL_CNN_SIZE = 16
#: The data-efficiency curve: these arms at about this many training images per class, and all.
CURVE_ARMS = ("feature_extraction", "small_cnn")
CURVE_PER_CLASS = 10


def run_demo(
    out: str | Path = "graft-demo",
    *,
    epochs: int | None = None,
    progress: bool = True,
    compare: bool = True,
    per_class: int | None = None,
    image_size: int | None = DEMO_IMAGE_SIZE,
) -> Path:
    """Run the demo; return the saved model's folder.

    Args:
        out: folder for the data, the model, the feature cache and the report.
        epochs: epochs per arm, all its stages together (default ``DEMO_EPOCHS``).
        progress: progress bars.
        compare: end with the comparison table and the report.
        per_class: use this many digits per class (all 1,797 digits when None).
        image_size: input size of the backbone in pixels (None: the advisor picks it).
            The comparison's transfer arms use the fitted model's size.
    """
    started = time.perf_counter()
    root = Path(out)
    data_dir = write_digits(root / "digits", per_class=per_class)
    print(f"data: scikit-learn's handwritten digits written as images to {data_dir}")
    dataset = load(data_dir)  # one Dataset: the fit and the comparison share its splits
    model_dir = root / "model"
    budget = epochs or DEMO_EPOCHS
    model = fit(
        dataset,
        backbone=DEFAULT_BACKBONE,
        strategy="auto",
        total_epochs=budget,
        epochs=budget,
        image_size=image_size,
        race_image_size=DEMO_SMALL_CNN_SIZE,
        batch_size=64,
        cache_dir=str(root / "cache"),
        progress=progress,
        out=model_dir,
    )
    print("\ntest metrics (held-out split):")
    print(format_metrics(model.info["metrics"]["test"]))
    example = next(p for p in sorted((data_dir / "7").iterdir()))
    print(f"\nmodel saved to {model_dir}")
    print(f"try:  graft predict {model_dir} {example}")
    if compare:
        _compare(dataset, model, root, budget)
    print(f"\ntime: {time.perf_counter() - started:.1f}s")
    return model_dir


def _compare(dataset: Dataset, model: GraftModel, root: Path, epochs: int) -> None:
    """The comparison on the demo's data: the fitted model (the ``auto`` arm) against the demo's
    arms, at the input size the advisor chose."""
    # The transfer arms train at the advisor's size (the fitted model may be the race's small CNN).
    facts = (model.info.get("advice") or {}).get("facts") or {}
    size = facts.get("image_size") or model.data_config.image_size
    arms = ["auto", *DEMO_ARMS]
    fitted = {"auto": model}
    race = (model.info.get("advice") or {}).get("race") or {}
    if race.get("kept") == "scratch" and race.get("network") in DEMO_ARMS:
        # The race's winner is the small_cnn arm itself: the same network from scratch on the
        # same splits, epochs, rate and input side (DEMO_SMALL_CNN_SIZE); not trained twice.
        fitted[race["network"]] = model
    print(
        f"\nis transfer helping? comparing the advisor's plan (auto) with "
        f"{', '.join(DEMO_ARMS)} on the same splits, {epochs} epochs each"
    )
    few = min(0.5, CURVE_PER_CLASS * len(dataset.class_names or []) / max(1, len(dataset.train)))
    report = root / "report.html"
    result = run_compare(
        dataset,
        backbone=DEFAULT_BACKBONE,
        budget="quick",
        epochs=epochs,
        lr=StrategyConfig().lr,  # the fit's default rate, for every arm
        image_size=size,
        small_cnn_size=DEMO_SMALL_CNN_SIZE,
        arms=arms,
        fractions=sorted({few, 1.0}),
        seeds=1,
        curve_arms=list(CURVE_ARMS),
        fitted=fitted,
        cache_dir=str(root / "cache"),
        report=report,
        log=_quiet,
    )
    print()
    print(result.table())
    print()
    print(curve_text(result))
    print()
    print(result.verdict)
    print(f"report: {report}")


def curve_text(result: Comparison) -> str:
    """The data-efficiency curve as lines: per training-set size, each arm's score."""
    metric = result.metric
    sizes = sorted({r["n_train"] for r in result.curve_runs})
    lines = [f"data efficiency ({metric} on the same test split):"]
    for n in sizes:
        runs = [r for r in result.curve_runs if r["n_train"] == n]
        cells = ", ".join(f"{r['strategy']} {r[metric]:.3f}" for r in runs)
        ranked = sorted(runs, key=lambda r: -r[metric])
        lead = ranked[0]["strategy"] if ranked[0][metric] > ranked[-1][metric] else "tied"
        lines.append(f"  {n:>5} training images: {cells}  -> {lead}")
    return "\n".join(lines)


def _quiet(message: str) -> None:
    del message
