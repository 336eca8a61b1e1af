"""How much of a difference is noise: bootstrap intervals over test examples, calibration error.

A test set of n examples measures accuracy to within about ``1/sqrt(n)``; two arms that differ by
less than that, or by less than one test example (``1/n``), are not told apart by it. The paired
bootstrap (Efron & Tibshirani 1993; Koehn 2004 for system comparisons) resamples the test
examples once for both arms, so their shared difficulty cancels out of the difference.

Everything here is numpy only: per-example values in, numbers out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Bootstrap resamples; 2,000 put the 2.5 % quantile within about 0.1 point for n = 1,000.
RESAMPLES = 2000
LEVEL = 0.95


def _mean(values: np.ndarray) -> np.ndarray:
    return np.asarray(values.mean(axis=-1))


def _root_mean(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.sqrt(values.mean(axis=-1)))


#: Metric -> (per-example value from (targets, decoded outputs), statistic over examples).
#: The statistic of the per-example values is exactly the metric, so the interval is the metric's.
def _correct(targets: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    return (outputs.argmax(axis=1) == targets).astype(np.float64)


def _squared_error(targets: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    t = targets.reshape(len(targets), -1).astype(np.float64)
    return np.asarray(((outputs.reshape(len(outputs), -1) - t) ** 2).mean(axis=1))


PER_EXAMPLE: dict[
    str,
    tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]],
] = {
    "accuracy": (_correct, _mean),
    "rmse": (_squared_error, _root_mean),
}


@dataclass(frozen=True)
class Interval:
    """A statistic with its bootstrap interval (``level``, percentile method)."""

    value: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _check(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not len(values):
        raise ValueError(f"{name}: need a non-empty 1-d array of per-example values")
    return values


def bootstrap_interval(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] = _mean,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> Interval:
    """``statistic`` of per-example ``values`` with a percentile bootstrap interval."""
    values = _check(values, "values")
    draws = statistic(values[_indices(len(values), resamples, seed)])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(statistic(values)), float(low), float(high), len(values))


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] = _mean,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> Interval:
    """``statistic(a) - statistic(b)`` over the same examples, resampled together (paired)."""
    a, b = _check(a, "a"), _check(b, "b")
    if len(a) != len(b):
        raise ValueError(f"paired values need the same examples: {len(a)} vs {len(b)}")
    idx = _indices(len(a), resamples, seed)
    draws = statistic(a[idx]) - statistic(b[idx])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(statistic(a) - statistic(b)), float(low), float(high), len(a))


def clears_noise(diff: Interval, metric: str) -> bool:
    """A difference is real when its interval excludes 0 and, for accuracy, exceeds one example."""
    one_example = 1.0 / diff.n if metric == "accuracy" else 0.0
    return diff.excludes_zero() and abs(diff.value) > one_example


def seed_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (0 spread for a single seed)."""
    arr = np.asarray(values, dtype=np.float64)
    if not len(arr):
        raise ValueError("seed_spread: no values")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): mean |accuracy - confidence| over equal-width confidence bins."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(targets)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def scale_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities re-softmaxed at ``temperature`` (logits recovered as log-probabilities)."""
    logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def fit_temperature(probs: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (golden-section, 0.05..20)."""
    targets = np.asarray(targets)

    def nll(log_t: float) -> float:
        p = scale_temperature(probs, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(targets)), targets], 1e-12, 1)).mean())

    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(c) < nll(d):
            hi = d
        else:
            lo = c
    return float(np.exp((lo + hi) / 2))
