"""Plots of a run: learning curves, confusion matrix, regression fit, data efficiency, layers.

Each function returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas without
pyplot, so nothing here changes the user's backend or keeps figures alive in pyplot's registry.
Save one with :func:`save_figure` or embed it with :func:`figure_to_png_bytes`.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numpy as np

from graft.errors import ConfigError, DataError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Colour-blind-safe (Okabe-Ito), ordered so the first two contrast well.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
_INK, _MUTED, _GRID = "#1f2933", "#6b7785", "#e4e7eb"
P = ParamSpec("P")
R = TypeVar("R")


_RC = {
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlecolor": _INK,
    "axes.labelcolor": _INK,
    "axes.labelsize": 9,
    "axes.edgecolor": _MUTED,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": _MUTED,
    "ytick.color": _MUTED,
    "xtick.labelcolor": _INK,
    "ytick.labelcolor": _INK,
    "legend.frameon": False,
    "legend.fontsize": 9,
}


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Draw inside graft's rc settings without changing the caller's global ones."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
            return fn(*args, **kwargs)

    return wrapper


def _figure(
    ncols: int = 1, size: tuple[float, float] = (5.0, 3.4), grid: str = "y"
) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        if grid:
            ax.grid(axis=grid, color=_GRID, linewidth=0.8)  # type: ignore[arg-type]
            ax.set_axisbelow(True)
    return fig, axes


def figure_to_png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes (for embedding in the HTML report)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write a figure atomically; the format follows the suffix (``.png``, ``.svg``, ``.pdf``)."""
    from graft.io import atomic_write_bytes

    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    if fmt not in ("png", "svg", "pdf", "jpg", "jpeg"):
        raise ConfigError(f"{path}: unknown image suffix {fmt!r}; use .png, .svg or .pdf")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white")
    return atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------- learning curves


def _metric_keys(history: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None) -> list[str]:
    if metrics is not None:
        keys = [m if m.startswith("val_") else f"val_{m}" for m in metrics]
        missing = [k for k in keys if not any(k in r for r in history)]
        if missing:
            raise ConfigError(f"metrics {missing} are not in the history")
        return keys
    skip = {"val_loss", "val_log_loss"}
    keys = []
    for row in history:
        keys += [k for k in row if k.startswith("val_") and k not in skip and k not in keys]
    return keys[:4]


@_styled
def plot_learning_curves(
    history: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None
) -> Figure:
    """Loss (train and validation) and validation metrics per epoch, stages marked.

    Epochs are numbered across stages; a dashed line and the stage name mark where each
    stage begins, and a dot marks the epoch whose weights were kept (``best``).

    Args:
        history: rows with ``epoch``, ``stage``, ``train_loss``, ``val_loss`` and ``val_*``
            metrics, as returned by training.
        metrics: validation metrics for the right panel (default: up to four found).
    """
    if not history:
        raise DataError("history is empty: there is nothing to plot")
    keys = _metric_keys(history, metrics)
    fig, axes = _figure(2 if keys else 1)
    x = np.arange(1, len(history) + 1)
    for i, (key, label) in enumerate([("train_loss", "train"), ("val_loss", "validation")]):
        y = [float(r.get(key, np.nan)) for r in history]
        axes[0].plot(x, y, color=PALETTE[i], label=label, linewidth=1.8, marker=".")
    axes[0].set(title="Loss", xlabel="epoch")
    for i, key in enumerate(keys):
        y = [float(r.get(key, np.nan)) for r in history]
        axes[1].plot(x, y, color=PALETTE[i + 2], label=key[4:], linewidth=1.8, marker=".")
    if keys:
        axes[1].set(title="Validation metrics", xlabel="epoch")
    best = [i for i, r in enumerate(history) if r.get("best")]
    for ax in axes:
        _mark_stages(ax, history)
        for i in best:
            ax.axvline(x[i], color=_MUTED, linewidth=0.8, linestyle=":")
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
        ax.set_xlim(0.5, len(history) + 0.5)  # a one-epoch run still gets a sensible axis
    return fig


def _mark_stages(ax: Axes, history: Sequence[Mapping[str, Any]]) -> None:
    stages = [(r.get("stage_index"), r.get("stage")) for r in history]
    for i, stage in enumerate(stages):
        if i == 0 or stage != stages[i - 1]:
            if i > 0:
                ax.axvline(i + 0.5, color=_MUTED, linewidth=1, linestyle="--")
            if stage[1] is not None:
                ax.annotate(
                    str(stage[1]),
                    (i + 0.6, 1.0),
                    xycoords=("data", "axes fraction"),
                    va="top",
                    fontsize=8,
                    color=_MUTED,
                )


# ---------------------------------------------------------------- evaluation plots


@_styled
def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Confusion matrix coloured by row share (recall), annotated with counts when small.

    Shape:
        cm: ``(n_classes, n_classes)``, true classes as rows.
    """
    counts = np.asarray(cm)
    n = len(class_names)
    if counts.shape != (n, n):
        raise DataError(f"confusion matrix has shape {counts.shape} for {n} class names")
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(3.2, 0.36 * n + 1.4), 12.0)
    fig, (ax,) = _figure(1, (side + 0.6, side), grid="")
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if n <= 25:
        for (i, j), c in np.ndenumerate(counts):
            if c:
                color = "white" if share[i, j] > 0.55 else _INK
                ax.text(j, i, str(c), ha="center", va="center", fontsize=8, color=color)
    ticks = np.arange(n)
    tilt = 45 if n > 6 and max(len(str(c)) for c in class_names) > 2 else 0
    ax.set_xticks(
        ticks, [str(c) for c in class_names], rotation=tilt, ha="right" if tilt else "center"
    )
    ax.set_yticks(ticks, [str(c) for c in class_names])
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (colour: share of row)")
    return fig


@_styled
def plot_regression(
    y_true: np.ndarray, y_pred: np.ndarray, *, target: int = 0, name: str | None = None
) -> Figure:
    """Predicted against true values with the identity line, and residuals against predicted.

    Shape:
        y_true, y_pred: ``(n,)`` or ``(n, n_targets)``; ``target`` picks the column.
    """
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)[:, target]
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)[:, target]
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} samples but y_pred has {len(p)}")
    fig, (ax, res) = _figure(2, (4.6, 3.8))
    label = name or "target"
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], color=_MUTED, linestyle="--", linewidth=1, label="y = x")
    ax.scatter(t, p, s=14, alpha=0.6, color=PALETTE[0], edgecolors="none")
    ax.set(xlabel=f"true {label}", ylabel=f"predicted {label}", title="Predicted vs true")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend()
    res.axhline(0, color=_MUTED, linestyle="--", linewidth=1)
    res.scatter(p, p - t, s=14, alpha=0.6, color=PALETTE[1], edgecolors="none")
    res.set(xlabel=f"predicted {label}", ylabel="residual (predicted − true)", title="Residuals")
    return fig


# ---------------------------------------------------------------- data efficiency


def aggregate_runs(
    rows: Iterable[Mapping[str, Any]],
    by: Sequence[str] = ("strategy", "fraction"),
    metric: str = "accuracy",
) -> list[dict[str, Any]]:
    """Mean, standard deviation (ddof 1; 0 for one run) and count of ``metric`` per group.

    Returns rows ``{**group, "mean", "std", "n"}`` sorted by group.
    """
    groups: dict[tuple[Any, ...], list[float]] = {}
    for i, row in enumerate(rows):
        missing = [k for k in (*by, metric) if k not in row]
        if missing:
            raise DataError(f"run row {i} has no {missing}; it has {sorted(row)}")
        groups.setdefault(tuple(row[k] for k in by), []).append(float(row[metric]))
    out = []
    for key in sorted(groups, key=lambda k: tuple(str(v) if isinstance(v, str) else v for v in k)):
        v = np.asarray(groups[key])
        std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out.append(
            {**dict(zip(by, key, strict=True)), "mean": float(v.mean()), "std": std, "n": len(v)}
        )
    return out


@_styled
def plot_data_efficiency(
    rows: Sequence[Mapping[str, Any]], metric: str = "accuracy", x: str | None = None
) -> Figure:
    """Metric against training-set size per strategy: mean line with a ±1 std band over seeds.

    Args:
        rows: one row per run with ``strategy``, ``fraction`` or ``n_train``, ``seed`` and
            ``metric``.
        x: the size column (default ``n_train`` when present, else ``fraction``); the axis is
            logarithmic when sizes span a factor of 10 or more.
    """
    if not rows:
        raise DataError("no runs to plot")
    x = x or ("n_train" if "n_train" in rows[0] else "fraction")
    agg = aggregate_runs(rows, ("strategy", x), metric)
    fig, (ax,) = _figure(1, (6.4, 3.8))
    strategies = list(dict.fromkeys(r["strategy"] for r in agg))
    for i, s in enumerate(strategies):
        part = sorted((r for r in agg if r["strategy"] == s), key=lambda r: r[x])
        xs = np.array([r[x] for r in part], dtype=float)
        mean = np.array([r["mean"] for r in part])
        std = np.array([r["std"] for r in part])
        color = PALETTE[i % len(PALETTE)]
        ax.plot(xs, mean, color=color, marker="o", markersize=4, linewidth=1.8, label=str(s))
        ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
    sizes = [float(r[x]) for r in agg if float(r[x]) > 0]
    if sizes and max(sizes) / min(sizes) >= 10:
        from matplotlib.ticker import ScalarFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 20, 100, 1000 rather than 10^2
    label = "training examples" if x == "n_train" else "fraction of training set"
    ax.set(xlabel=label, ylabel=metric, title=f"Data efficiency: {metric} (mean ± std over seeds)")
    ax.legend()
    return fig


@_styled
def plot_layer_importance(
    importance: Mapping[str, float] | Sequence[tuple[str, float]], title: str | None = None
) -> Figure:
    """Horizontal bars per layer group, input at the top and output at the bottom."""
    items = list(importance.items() if isinstance(importance, Mapping) else importance)
    if not items:
        raise DataError("no layer importances to plot")
    names, values = [str(k) for k, _ in items], np.array([float(v) for _, v in items])
    if not all(math.isfinite(v) for v in values):
        raise DataError(f"layer importances must be finite numbers; got {values.tolist()}")
    height = min(max(2.0, 0.3 * len(items) + 1.0), 14.0)
    fig, (ax,) = _figure(1, (6.0, height), grid="x")
    y = np.arange(len(items))
    ax.barh(y, values, color=PALETTE[0], height=0.7)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set(title=title or "Layer importance (input at top)", xlabel="importance")
    return fig
