"""Metrics on NumPy outputs, which way each one improves, and how to print them.

The per-epoch metrics are plain NumPy (no scikit-learn import: it costs about a second of start-up
on every run); ``tests/test_metrics.py`` checks each against scikit-learn's value on real
predictions.

Every function takes targets and decoded outputs (probabilities, or values in original units)
and returns a flat ``dict[str, float]`` whose keys :func:`metric_direction` understands, so
early stopping can monitor any of them. :func:`format_value` is the one rounding rule shared by
the terminal (:func:`format_metrics`) and the HTML report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from graft._registry import Registry
from graft.errors import ConfigError, DataError

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Metric:
    """What a metric name means and whether larger values are better."""

    direction: Direction
    description: str


METRICS: Registry[Metric] = Registry("metric")

for _name, _direction, _description in [
    ("loss", "min", "training objective on the validation set"),
    ("accuracy", "max", "fraction of samples whose top class is right"),
    ("balanced_accuracy", "max", "mean recall over classes"),
    ("macro_f1", "max", "F1 averaged over classes, each class weighted equally"),
    ("micro_f1", "max", "F1 over all (sample, label) decisions"),
    ("precision", "max", "fraction of predicted positives that are right"),
    ("recall", "max", "fraction of actual positives found"),
    ("f1", "max", "harmonic mean of precision and recall"),
    ("log_loss", "min", "mean negative log-probability of the true class"),
    ("roc_auc", "max", "area under the ROC curve (macro one-vs-rest for several classes)"),
    ("subset_accuracy", "max", "fraction of samples with every label right"),
    ("hamming_loss", "min", "fraction of (sample, label) decisions that are wrong"),
    ("mae", "min", "mean absolute error, in the target's units"),
    ("mse", "min", "mean squared error, in squared target units"),
    ("rmse", "min", "root mean squared error, in the target's units"),
    ("r2", "max", "coefficient of determination (1 is perfect, 0 predicts the mean)"),
]:
    METRICS.register(_name)(Metric(_direction, _description))  # type: ignore[arg-type]

_TOP_K = re.compile(r"(^|_)top\d+_accuracy($|_)")
_SPLIT_PREFIXES = ("val_", "train_", "test_")


def metric_direction(name: str) -> Direction:
    """Whether a metric improves upwards (``"max"``) or downwards (``"min"``).

    Accepts split prefixes (``val_accuracy``), ``topK_accuracy``, and per-target or per-task
    names built from a known metric (``rmse_age``, ``species_macro_f1``).

    Raises:
        ConfigError: the name contains no known metric.
    """
    key = METRICS.normalize(name)
    for prefix in _SPLIT_PREFIXES:
        if key.startswith(prefix) and key != prefix.rstrip("_"):
            key = key[len(prefix) :]
            break
    if key in METRICS:
        return METRICS.get(key).direction
    if _TOP_K.search(key):
        return "max"
    # per-target (rmse_age) and per-task (species_macro_f1) names; the longest match wins
    parts = [m for m in METRICS if key.endswith(f"_{m}") or key.startswith(f"{m}_")]
    if parts:
        return METRICS.get(max(parts, key=len)).direction
    known = ", ".join(f"val_{m}" for m in METRICS)
    raise ConfigError(
        f"unknown metric {name!r}: graft cannot tell whether higher or lower is better. "
        f"Known (monitor them as): {known}, val_top5_accuracy; per-target names such as "
        "val_rmse_<target> also work"
    )


# ---------------------------------------------------------------- formatting


def format_value(value: Any) -> str:
    """The one rounding rule for metric values, shared by the terminal and the HTML report.

    Integers get thousands separators; floats get 4 decimals, scientific notation when tiny,
    and one decimal with separators when large; NaN and None print as ``n/a``.
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.2e}"
        if abs(v) >= 1e4:
            return f"{v:,.1f}"
        return f"{v:.4f}"
    return str(value)


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """A compact aligned table: one metric per line, or one column per split.

    ``metrics`` is either flat (``{"accuracy": 0.93, ...}``) or keyed by split
    (``{"val": {...}, "test": {...}}``).
    """
    if not metrics:
        return "  (no metrics)"
    if all(isinstance(v, Mapping) for v in metrics.values()):
        splits = list(metrics)
        names: list[str] = []
        for values in metrics.values():
            names += [k for k in values if k not in names]
        cells = [[format_value(metrics[s].get(n)) for s in splits] for n in names]
        header = ["metric", *splits]
    else:
        names = list(metrics)
        cells = [[format_value(metrics[n])] for n in names]
        header = []
    width = max(len(n) for n in [*names, *header[:1]])
    cols = [max(len(r[i]) for r in [*cells, header[1:]] if r) for i in range(len(cells[0]))]
    lines = []
    if header:
        lines.append(
            "  "
            + header[0].ljust(width)
            + "".join(f"  {h:>{cols[i]}}" for i, h in enumerate(header[1:]))
        )
    for n, row in zip(names, cells, strict=True):
        lines.append(
            "  " + n.ljust(width) + "".join(f"  {c:>{cols[i]}}" for i, c in enumerate(row))
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- classification


def _check_classification(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:  # binary given as P(positive)
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or len(p) != len(y):
        raise DataError(
            f"proba has shape {np.shape(proba)} but y_true has {len(y)} samples; "
            "pass one row of class probabilities per sample"
        )
    if len(y) == 0:
        raise DataError("no samples to evaluate: y_true is empty")
    if class_names is not None and len(class_names) != p.shape[1]:
        raise DataError(
            f"class_names has {len(class_names)} names but proba has {p.shape[1]} columns"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise DataError(
            f"y_true must hold class indices in 0..{p.shape[1] - 1}; "
            f"got values {np.unique(y)[:10].tolist()}"
        )
    return y.astype(np.int64), p


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their mean rank (``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]  # each tie group is ordered[start:end]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of one binary problem, or None when only one class is present.

    The Mann-Whitney form (ties count one half), equal to the area under the ROC curve that
    ``sklearn.metrics.roc_auc_score`` integrates.
    """
    pos = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(score, dtype=np.float64).reshape(-1))
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _per_class_counts(
    y: np.ndarray, pred: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted counts and true counts (support) for each class."""
    tp = np.bincount(y[pred == y], minlength=n_classes)
    return tp, np.bincount(pred, minlength=n_classes), np.bincount(y, minlength=n_classes)


def _f1(tp: np.ndarray, predicted: np.ndarray, support: np.ndarray) -> np.ndarray:
    """F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (predicted + actual); 0 where both are 0."""
    return _ratio(2 * tp, predicted + support)


def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    class_names: list[str] | None = None,
    top_k: int = 5,
) -> dict[str, float]:
    """Accuracy, top-k accuracy, macro-F1, balanced accuracy, log loss and ROC AUC.

    Top-k uses ``k = min(top_k, n_classes - 1)`` (key ``top{k}_accuracy``) and is left out
    for two classes. ROC AUC (binary: of class 1; else macro one-vs-rest) is left out unless
    every class occurs in ``y_true``, since it is undefined for a missing class.

    Args:
        y_true: class indices.
        proba: class probabilities (rows sum to 1), or P(class 1) for a binary problem.
        class_names: checked against the number of columns.
        top_k: the k of top-k accuracy.

    Shape:
        y_true: ``(n,)``; proba: ``(n, n_classes)`` or ``(n,)``.
    """
    y, p = _check_classification(y_true, proba, class_names)
    n_classes = p.shape[1]
    pred = p.argmax(axis=1)
    out = {"accuracy": float(np.mean(pred == y))}
    k = min(top_k, n_classes - 1)
    if n_classes > 2 and k >= 1:
        top = np.argsort(-p, axis=1, kind="stable")[:, :k]
        out[f"top{k}_accuracy"] = float(np.mean((top == y[:, None]).any(axis=1)))
    tp, predicted, support = _per_class_counts(y, pred, n_classes)
    seen = (predicted + support) > 0  # scikit-learn averages over the labels that occur
    out["macro_f1"] = float(_f1(tp, predicted, support)[seen].mean())
    out["balanced_accuracy"] = float((tp[support > 0] / support[support > 0]).mean())
    picked = np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)
    out["log_loss"] = float(-np.mean(np.log(picked)))
    if len(np.unique(y)) == n_classes:
        classes = [1] if n_classes == 2 else range(n_classes)
        aucs = [_auc(y == c, p[:, c]) for c in classes]
        out["roc_auc"] = float(np.mean([a for a in aucs if a is not None]))
    return out


def per_class_report(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Precision, recall, F1, support and one-vs-rest ROC AUC for each class.

    ``roc_auc`` is None for a class that is absent from (or is all of) ``y_true``.

    Shape:
        y_true: ``(n,)``; proba: ``(n, n_classes)``.
    """
    y, p = _check_classification(y_true, proba, class_names)
    tp, predicted, support = _per_class_counts(y, p.argmax(axis=1), p.shape[1])
    prec, rec, f1 = _ratio(tp, predicted), _ratio(tp, support), _f1(tp, predicted, support)
    return [
        {
            "class": str(name),
            "precision": float(prec[c]),
            "recall": float(rec[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
            "roc_auc": _auc(y == c, p[:, c]),
        }
        for c, name in enumerate(class_names)
    ]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns.

    Shape:
        y_true, y_pred: ``(n,)``; returns ``(n_classes, n_classes)`` int64.
    """
    y, pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if len(y) != len(pred):
        raise DataError(f"y_true has {len(y)} samples but y_pred has {len(pred)}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y.astype(np.int64), pred.astype(np.int64)), 1)
    return cm


# ---------------------------------------------------------------- regression and multi-label


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, *, target_names: list[str] | None = None
) -> dict[str, float]:
    """MAE, RMSE and R² in the targets' original units (pass unstandardised values).

    With several targets, ``mae``/``rmse``/``r2`` are means over targets and each target also
    gets ``mae_<name>`` etc. R² is left out with fewer than two samples.

    Shape:
        y_true, y_pred: ``(n,)`` or ``(n, n_targets)``.
    """
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if t.shape != p.shape or len(t) == 0:
        raise DataError(f"y_true has shape {t.shape} but y_pred has {p.shape}; they must match")
    names = list(target_names or [f"y{i}" for i in range(t.shape[1])])
    if len(names) != t.shape[1]:
        raise DataError(f"target_names has {len(names)} names for {t.shape[1]} targets")
    err = p - t
    per = {"mae": np.abs(err).mean(axis=0), "rmse": np.sqrt((err**2).mean(axis=0))}
    if len(t) > 1:
        ss_res = (err**2).sum(axis=0)
        ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
        # a constant target: 1 when predicted exactly, else 0 (scikit-learn's convention)
        safe = np.where(ss_tot > 0, ss_tot, 1.0)
        per["r2"] = np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    out = {k: float(v.mean()) for k, v in per.items()}
    if t.shape[1] > 1:
        for k, v in per.items():
            out.update({f"{k}_{n}": float(x) for n, x in zip(names, v, strict=True)})
    return out


def multilabel_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Micro/macro F1, subset accuracy, Hamming loss and macro ROC AUC for several labels.

    ``roc_auc`` averages over the labels that have both positives and negatives in
    ``y_true`` and is left out when none has.

    Shape:
        y_true: ``(n, n_labels)`` of 0/1; proba: ``(n, n_labels)``.
    """
    t = np.asarray(y_true).reshape(len(y_true), -1).astype(bool)
    p = np.asarray(proba, dtype=np.float64).reshape(len(proba), -1)
    if t.shape != p.shape or len(t) == 0:
        raise DataError(f"y_true has shape {t.shape} but proba has {p.shape}; they must match")
    pred = p >= threshold
    tp, predicted, actual = (pred & t).sum(axis=0), pred.sum(axis=0), t.sum(axis=0)
    out = {
        "micro_f1": float(_f1(tp.sum(), predicted.sum(), actual.sum())),
        "macro_f1": float(_f1(tp, predicted, actual).mean()),
        "subset_accuracy": float(np.mean((pred == t).all(axis=1))),
        "hamming_loss": float(np.mean(pred != t)),
    }
    aucs = [a for j in range(t.shape[1]) if (a := _auc(t[:, j], p[:, j])) is not None]
    if aucs:
        out["roc_auc"] = float(np.mean(aucs))
    return out
