"""Domain gap between two sets of features: how far the user's data is from the source.

Three measures, each on features ``(n, d)`` from the same backbone:

* :func:`mmd` — unbiased MMD² with an RBF kernel (Gretton et al., "A Kernel Two-Sample Test",
  JMLR 2012);
* :func:`proxy_a_distance` — how well a linear classifier tells the two sets apart (Ben-David
  et al., "Analysis of Representations for Domain Adaptation", NeurIPS 2006);
* :func:`coral_distance` — distance between the covariances (Sun & Saenko, "Deep CORAL",
  ECCV 2016 workshops).

:func:`domain_gap` runs all three and turns the proxy A-distance (and MMD² where the former
saturates) into a level (near / moderate / far) with a one-line reading of what it implies
for the transfer strategy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from graft.errors import ConfigError, DataError
from graft.measure.scores.base import as_matrix

Level = Literal["near", "moderate", "far"]

#: Proxy A-distance below this: a linear probe cannot tell the domains apart much better than
#: chance (held-out error > 35%): two random halves of one dataset give 0.0.
NEAR_BELOW = 0.6
#: Proxy A-distance above this (held-out error < 10%) *and* MMD² above :data:`MMD_FAR_ABOVE`
#: is far. The PAD saturates near 2 on 1280-d features for any visible shift, so MMD² grades
#: the saturated cases.
FAR_ABOVE = 1.6
MMD_FAR_ABOVE = 0.05
# Calibration (bundled efficientnet_lite0 features of scikit-learn digits at 112 px, 500 per
# side; PAD / MMD²): random halves 0.00 / -0.001 (near); digits shifted by one pixel 1.57 /
# 0.023 and classes 0-4 vs 5-9 1.66 / 0.042 (moderate); rotated 90° 2.00 / 0.11, blurred and
# dimmed 1.98 / 0.13, negatives 1.99 / 0.14, natural-image crops 1.98 / 0.29, uniform noise
# 2.00 / 0.33 (far). On raw digit pixels, the first 300 vs the next 300 (other writers) give
# 0.81 / 0.016 (moderate).

READINGS: dict[str, str] = {
    "near": "near: the target looks like the source; feature extraction or fine-tuning the "
    "top layers should do",
    "moderate": "moderate: fine-tune the top layers, then more (two-stage or progressive "
    "unfreezing) if validation stalls",
    "far": "far: unfreeze deeper layers with discriminative learning rates, and consider domain "
    "adaptation (DANN, CORAL/MMD) with unlabeled target data",
}


@dataclass(frozen=True)
class GapReport:
    """The domain gap between source and target features, with what it means for transfer.

    Args:
        mmd: unbiased MMD² (median-heuristic RBF kernel); about 0 for the same distribution.
        proxy_a_distance: ``2 (1 - 2 err)`` of a linear domain classifier, in ``[0, 2]``.
        coral: ``|C_s - C_t|_F^2 / (4 d^2)``.
        level: ``near``, ``moderate`` or ``far`` (:func:`gap_level`).
        reading: one line on what the level implies for the transfer strategy.
        n_source: source samples given (each measure subsamples to ``max_samples``).
        n_target: target samples given.
        dim: feature dimension.
        items: what was compared, for the printed summary (``images`` or ``texts``).
    """

    mmd: float
    proxy_a_distance: float
    coral: float
    level: Level
    reading: str
    n_source: int
    n_target: int
    dim: int
    items: str = "images"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def domain_gap(
    source: np.ndarray, target: np.ndarray, *, max_samples: int = 2000, seed: int = 0
) -> GapReport:
    """Measure the gap between two feature sets and say what it implies.

    Args:
        source: features of the source-like data (e.g. a sample of what the backbone saw).
        target: features of the user's data, from the same backbone.
        max_samples: at most this many samples per side (a seeded random subset).
        seed: seed for subsampling and the classifier's folds.

    Shape:
        source: ``(n1, d)``; target: ``(n2, d)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> domain_gap(rng.normal(size=(200, 8)), rng.normal(size=(200, 8))).level
        'near'
    """
    x, y = _pair(source, target)
    pad = proxy_a_distance(x, y, max_samples=max_samples, seed=seed)
    mmd2 = mmd(x, y, max_samples=max_samples, seed=seed)
    level = gap_level(pad, mmd2)
    return GapReport(
        mmd=mmd2,
        proxy_a_distance=pad,
        coral=coral_distance(x, y),
        level=level,
        reading=READINGS[level],
        n_source=len(x),
        n_target=len(y),
        dim=x.shape[1],
    )


def gap_level(pad: float, mmd2: float) -> Level:
    """The gap level from the proxy A-distance, with MMD² separating the saturated cases.

    ``near`` when ``pad < NEAR_BELOW``; ``far`` when ``pad > FAR_ABOVE`` and
    ``mmd2 > MMD_FAR_ABOVE``; ``moderate`` otherwise.
    """
    if pad < NEAR_BELOW:
        return "near"
    return "far" if pad > FAR_ABOVE and mmd2 > MMD_FAR_ABOVE else "moderate"


def mmd(
    x: np.ndarray,
    y: np.ndarray,
    *,
    bandwidths: Sequence[float] | None = None,
    max_samples: int = 2000,
    seed: int = 0,
) -> float:
    """Unbiased MMD² between two samples with an RBF kernel.

    ``k(a, b) = exp(-|a - b|^2 / (2 s^2))``. Without ``bandwidths``, ``s`` follows the median
    heuristic: ``2 s^2`` is the median squared distance over all pairs of the pooled sample.
    With several bandwidths the kernel is their **mean**, which keeps MMD² on the same
    ``[-2, 2]`` scale whatever their number. The unbiased estimate can dip slightly below 0
    when the two samples come from one distribution.

    Args:
        x: first sample.
        y: second sample.
        bandwidths: kernel widths ``s`` in feature units; None = median heuristic.
        max_samples: at most this many samples per side (seeded subset), as the cost is
            quadratic.
        seed: subsampling seed.

    Shape:
        x: ``(n1, d)``; y: ``(n2, d)``.
    """
    a, b = _pair(x, y)
    rng = np.random.default_rng(seed)
    a, b = _subsample(a, max_samples, rng), _subsample(b, max_samples, rng)
    d_aa, d_bb, d_ab = _sq_dists(a, a), _sq_dists(b, b), _sq_dists(a, b)
    widths = _bandwidths(bandwidths, d_aa, d_bb, d_ab)

    def kernel_mean(d2: np.ndarray, same: bool) -> float:
        k = np.mean([np.exp(-d2 / (2.0 * s * s)) for s in widths], axis=0)
        if not same:
            return float(k.mean())
        size = len(d2)
        return float((k.sum() - np.trace(k)) / (size * (size - 1)))

    return kernel_mean(d_aa, True) + kernel_mean(d_bb, True) - 2.0 * kernel_mean(d_ab, False)


def proxy_a_distance(
    x: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0, max_samples: int = 2000
) -> float:
    """Proxy A-distance ``2 (1 - 2 err)`` from a cross-validated linear domain classifier.

    Both sides are subsampled to the same size (at most ``max_samples``) so that chance is
    50%; ``err`` is the out-of-fold error of a logistic regression on standardized features.
    Clipped to ``[0, 2]``: 0 = indistinguishable, 2 = perfectly separable.

    Args:
        x: first sample.
        y: second sample.
        folds: cross-validation folds.
        seed: seed for subsampling and fold assignment.
        max_samples: at most this many samples per side.

    Shape:
        x: ``(n1, d)``; y: ``(n2, d)``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = _pair(x, y)
    if folds < 2:
        raise ConfigError(f"folds must be at least 2, got {folds}")
    n = min(len(a), len(b), max_samples)
    if n < folds:
        raise DataError(f"proxy_a_distance needs at least folds={folds} samples per side, got {n}")
    rng = np.random.default_rng(seed)
    data = np.vstack([_subsample(a, n, rng), _subsample(b, n, rng)])
    domain = np.repeat([0, 1], n)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # An unconverged fit on separable domains is still a perfect classifier.
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred = cross_val_predict(clf, data, domain, cv=cv)
    err = float(np.mean(pred != domain))
    return float(np.clip(2.0 * (1.0 - 2.0 * err), 0.0, 2.0))


def coral_distance(x: np.ndarray, y: np.ndarray) -> float:
    """CORAL distance ``|C_x - C_y|_F^2 / (4 d^2)`` between the feature covariances.

    Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV 2016
    workshops. Covariances use ``n - 1``; the value is in squared feature units.

    Shape:
        x: ``(n1, d)``; y: ``(n2, d)``.
    """
    a, b = _pair(x, y)
    d = a.shape[1]
    diff = _cov(a) - _cov(b)
    return float((diff**2).sum() / (4.0 * d * d))


def _cov(a: np.ndarray) -> np.ndarray:
    c = a - a.mean(axis=0)
    return c.T @ c / (len(a) - 1)


def _pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_matrix(x, "source features"), as_matrix(y, "target features")
    if a.shape[1] != b.shape[1]:
        raise DataError(
            f"source features have {a.shape[1]} dimensions but target features {b.shape[1]}; "
            "compute both with the same backbone"
        )
    return a, b


def _subsample(a: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if size < 2:
        raise ConfigError(f"max_samples must be at least 2, got {size}")
    if len(a) <= size:
        return a
    return a[np.sort(rng.choice(len(a), size, replace=False))]


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)  # rounding can make a zero distance slightly negative


def _bandwidths(
    given: Sequence[float] | None, d_aa: np.ndarray, d_bb: np.ndarray, d_ab: np.ndarray
) -> list[float]:
    if given is not None:
        widths = [float(s) for s in given]
        if not widths or any(not s > 0 for s in widths):
            raise ConfigError(f"bandwidths must be positive numbers, got {list(given)}")
        return widths
    iu_a, iu_b = np.triu_indices(len(d_aa), 1), np.triu_indices(len(d_bb), 1)
    pooled = np.concatenate([d_aa[iu_a], d_bb[iu_b], d_ab.ravel()])
    median = float(np.median(pooled))
    return [np.sqrt(median / 2.0) if median > 0 else 1.0]
