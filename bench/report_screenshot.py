"""Build a sample graft report from real runs on scikit-learn data, screenshot it in Chromium.

The numbers are real but come from scikit-learn models (fast, offline): an SGD logistic
regression on the handwritten digits trained in two stages for the learning curves, logistic
regression against k-nearest neighbours at several training fractions and seeds for the
data-efficiency curve, and ridge regression on the diabetes data for the regression plot. The
plan table is graft's own two-stage plan over illustrative layer groups.

    python bench/report_screenshot.py [out_dir]
    python bench/report_screenshot.py --html compare.html [--png compare.png]

writes ``report.html`` and ``report.png`` (headless Chromium) and prints pixel statistics;
it exits with status 1 when the screenshot looks blank. With ``--html`` it shoots an existing
report instead (e.g. one written by ``graft compare --report``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from graft import metrics
from graft.evaluate import curves
from graft.evaluate.report import Report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _digits_split(seed: int = 0) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return tuple(train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y))


def two_stage_history(x_tr: Any, y_tr: Any, x_va: Any, y_va: Any) -> list[dict[str, Any]]:
    """Per-epoch rows like graft's training history, from an SGD logistic regression."""
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.05, random_state=0)
    classes = np.arange(10)
    rows: list[dict[str, Any]] = []
    for index, (stage, eta, epochs) in enumerate([("head", 0.05, 6), ("top-2", 0.005, 6)]):
        model.set_params(eta0=eta)
        for epoch in range(1, epochs + 1):
            model.partial_fit(x_tr, y_tr, classes=classes)
            train = metrics.classification_metrics(y_tr, model.predict_proba(x_tr))
            val = metrics.classification_metrics(y_va, model.predict_proba(x_va))
            row = {"stage": stage, "stage_index": index, "epoch": epoch}
            row |= {"train_loss": train["log_loss"], "val_loss": val["log_loss"]}
            row |= {f"val_{k}": val[k] for k in ("accuracy", "macro_f1")}
            rows.append(row)
    best = min(rows, key=lambda r: r["val_loss"])
    for r in rows:
        r["best"] = r is best
    return rows


def data_efficiency_runs(
    x_tr: Any,
    y_tr: Any,
    x_te: Any,
    y_te: Any,
    fractions: tuple[float, ...] = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
    seeds: int = 3,
) -> list[dict[str, Any]]:
    """Test accuracy of two baselines at several training fractions and seeds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    makers = {
        "logistic regression": lambda: LogisticRegression(max_iter=300),
        "3-nearest neighbours": lambda: KNeighborsClassifier(3),
    }
    rows = []
    for fraction in fractions:
        for seed in range(seeds):
            idx = np.random.default_rng(seed).permutation(len(y_tr))[: int(fraction * len(y_tr))]
            for name, make in makers.items():
                model = make().fit(x_tr[idx], y_tr[idx])
                acc = float(np.mean(model.predict(x_te) == y_te))
                rows.append(
                    {"strategy": name, "fraction": fraction, "n_train": len(idx), "seed": seed}
                    | {"accuracy": acc}
                )
    return rows


def build_sample_report(out_dir: Path, *, quick: bool = False) -> Path:
    """Run the sample models and write ``report.html`` into ``out_dir``.

    ``quick`` measures data efficiency at three sizes and two seeds (for tests).
    """
    started = time.perf_counter()
    report = Report("Handwritten digits — sample report", subtitle="real scikit-learn runs")
    _add_plan_and_advisor(report)
    split = _digits_split()
    accuracy = _add_digits_sections(report, *split)
    _add_efficiency_sections(report, *split, quick=quick)
    _add_regression_sections(report)
    report.add_summary(
        {"dataset": "sklearn digits (1,797 images, 10 classes)", "backbone": "efficientnet_lite0"}
        | {"strategy": "two_stage", "test accuracy": accuracy}
        | {"time": f"{time.perf_counter() - started:.1f} s"}
    )
    return report.write(out_dir / "report.html")


def _add_plan_and_advisor(report: Report) -> None:
    from graft.strategies import create_strategy
    from graft.strategies.render import plan_rows

    groups = ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "head"]
    plan = create_strategy("two_stage", top=2).plan(groups, epochs=6, lr=3e-3)
    report.add_plan(plan_rows(plan, [12_810, 3_420_000]), strategy=plan.strategy)
    report.add_text(
        "Advisor",
        [
            "1,347 labelled training images over 10 classes: a small dataset.",
            "Domain gap to ImageNet is large (grey 8×8 digits), so the top blocks are unfrozen.",
            "Chosen: two_stage — train the head first, then the top 2 blocks at lr × 0.1.",
        ],
    )


def _add_digits_sections(report: Report, x_tr: Any, x_te: Any, y_tr: Any, y_te: Any) -> float:
    """Metrics, learning curves, per-class table, confusion matrix; returns test accuracy."""
    from sklearn.linear_model import LogisticRegression

    history = two_stage_history(x_tr, y_tr, x_te, y_te)
    model = LogisticRegression(max_iter=500).fit(x_tr, y_tr)
    proba = model.predict_proba(x_te)
    names = [str(c) for c in range(10)]
    test = metrics.classification_metrics(y_te, proba, class_names=names)
    val = {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")}
    report.add_metrics({"val": val, "test": test})
    report.add_figure(
        "Learning curves",
        curves.plot_learning_curves(history),
        "SGD logistic regression trained in two stages (learning rate 0.05, then 0.005); "
        "the dotted line marks the epoch whose weights were kept.",
    )
    report.add_table("Per-class results (test)", metrics.per_class_report(y_te, proba, names))
    cm = metrics.confusion(y_te, proba.argmax(axis=1), 10)
    report.add_figure("Confusion matrix (test)", curves.plot_confusion_matrix(cm, names))
    rows = np.abs(model.coef_).reshape(10, 8, 8).mean(axis=(0, 2))
    report.add_figure(
        "Importance by image row",
        curves.plot_layer_importance(
            {f"row {i}": float(v) for i, v in enumerate(rows)},
            title="Mean |weight| per pixel row (top row first)",
        ),
        "Mean |weight| of the logistic regression per pixel row (stands in for per-layer "
        "gradient norms of a network).",
    )
    return test["accuracy"]


def _add_efficiency_sections(
    report: Report, x_tr: Any, x_te: Any, y_tr: Any, y_te: Any, *, quick: bool
) -> None:
    if quick:
        runs = data_efficiency_runs(x_tr, y_tr, x_te, y_te, fractions=(0.05, 0.25, 1.0), seeds=2)
    else:
        runs = data_efficiency_runs(x_tr, y_tr, x_te, y_te)
    full = [r for r in curves.aggregate_runs(runs, ("strategy", "fraction")) if r["fraction"] == 1]
    winner = max(full, key=lambda r: r["mean"])
    report.add_comparison(
        [
            {"strategy": r["strategy"], "test accuracy": r["mean"], "std": r["std"], "runs": r["n"]}
            for r in full
        ],
        f"With the full training set, {winner['strategy']} is the most accurate "
        f"({metrics.format_value(winner['mean'])} mean test accuracy over {winner['n']} runs).",
    )
    seeds = len({r["seed"] for r in runs})
    report.add_figure(
        "Data efficiency",
        curves.plot_data_efficiency(runs, "accuracy", x="n_train"),
        f"Mean ± one standard deviation over {seeds} random subsets per size.",
    )


def _add_regression_sections(report: Report) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0)
    pred = Ridge(alpha=0.1).fit(x_tr, y_tr).predict(x_te)
    report.add_metrics(
        metrics.regression_metrics(y_te, pred), "Regression example: diabetes progression"
    )
    report.add_figure("Regression fit", curves.plot_regression(y_te, pred, name="progression"))


def screenshot(html: Path, png: Path, size: tuple[int, int] = (1280, 2400)) -> Path:
    """Render ``html`` with headless Chromium into ``png``."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}"]
        cmd += [f"--window-size={size[0]},{size[1]}", html.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    return png


def pixel_stats(png: Path) -> dict[str, float]:
    """Share of non-background pixels, distinct colours, and share of strongly coloured pixels."""
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    background = rgb[2, 2]  # the page colour in the corner
    ink = np.abs(rgb - background).sum(axis=2) > 30
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    colours = len(np.unique(rgb.reshape(-1, 3)[::7], axis=0))
    return {
        "width": float(rgb.shape[1]),
        "height": float(rgb.shape[0]),
        "ink_fraction": float(ink.mean()),
        "colour_fraction": float((saturation > 60).mean()),
        "distinct_colours": float(colours),
    }


def main(argv: list[str]) -> int:
    """``[out_dir]`` builds and shoots the sample report; ``--html FILE [--png PNG]`` shoots FILE."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out_dir", nargs="?", default="bench/out", help="for the sample report")
    p.add_argument("--html", type=Path, help="screenshot this existing report instead")
    p.add_argument("--png", type=Path, help="where the screenshot goes (default: next to it)")
    args = p.parse_args(argv)
    if args.html is not None:
        png = screenshot(args.html, args.png or args.html.with_suffix(".png"))
        return _verdict(args.html, png, pixel_stats(png))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = build_sample_report(out)
    png = screenshot(html, args.png or out / "report.png")
    return _verdict(html, png, pixel_stats(png))


def _verdict(html: Path, png: Path, stats: dict[str, float]) -> int:
    print(f"{html} ({html.stat().st_size:,} bytes) -> {png}")
    print(metrics.format_metrics(stats))
    return 0 if stats["ink_fraction"] > 0.05 and stats["distinct_colours"] > 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
