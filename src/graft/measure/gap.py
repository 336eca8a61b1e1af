"""Domain gap between two sets of features: how far the user's data is from the source.

Three measures, each on features ``(n, d)`` from the same backbone:

* :func:`mmd` — unbiased MMD² with an RBF kernel (Gretton et al., "A Kernel Two-Sample Test",
  JMLR 2012);
* :func:`proxy_a_distance` — how well a linear classifier tells the two sets apart (Ben-David
  et al., "Analysis of Representations for Domain Adaptation", NeurIPS 2006), here along the
  source's main directions, with a 95% interval (:func:`proxy_a_interval`);
* :func:`coral_distance` — distance between the covariances (Sun & Saenko, "Deep CORAL",
  ECCV 2016 workshops).

:func:`domain_gap` runs all three and turns the proxy A-distance (and MMD² where the former
is borderline) into a level (near / moderate / far) with a one-line reading of what it implies
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

#: The domain classifier of :func:`domain_gap` sees the source's top principal components only
#: (:func:`proxy_a_interval`): in the full 1280-d feature space it told every collection of
#: images from the reference sample (PAD 1.88 to 2.00 for other natural photos, faces, digits
#: and Fashion-MNIST alike); on 4 components it grades them.
GAP_COMPONENTS = 4
#: Cross-validation rounds averaged by :func:`domain_gap` (each a new subsample and new folds).
GAP_REPEATS = 5
#: Proxy A-distance below this: the target overlaps the source along its main directions.
NEAR_BELOW = 0.6
#: Proxy A-distance above this *and* MMD² above :data:`MMD_FAR_ABOVE` is far.
FAR_ABOVE = 1.0
MMD_FAR_ABOVE = 0.05
# Calibration (bundled efficientnet_lite0 at 112 px against 300 random crops of 11 of
# scikit-image's photographs; PAD on 4 components [95% interval] / MMD²): other crops of the
# same photos 0.00 [0.00, 0.19] / -0.002; crops of 4 other photographs (motorcycle, retina,
# moon, clock) 0.13 [0.00, 0.34] / 0.09; 200 LFW faces 0.46 [0.26, 0.64] / 0.19 (near);
# Fashion-MNIST 1.14 [1.00, 1.27] / 0.12, scikit-learn digits 1.27 [1.13, 1.38] / 0.51 (far).
# On raw digit pixels: random halves 0.09, the first 300 vs the next 300 writers 0.30,
# uniform noise 1.92.

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
        proxy_a_distance: ``2 (1 - 2 err)`` of a linear domain classifier on the source's top
            ``components`` principal components, in ``[0, 2]``.
        proxy_a_low: lower end of its 95% interval (:func:`proxy_a_interval`).
        proxy_a_high: upper end of its 95% interval.
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
    proxy_a_low: float = 0.0
    proxy_a_high: float = 2.0
    components: int | None = GAP_COMPONENTS

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
    pad, low, high = proxy_a_interval(
        x, y, max_samples=max_samples, seed=seed, components=GAP_COMPONENTS, repeats=GAP_REPEATS
    )
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
        proxy_a_low=low,
        proxy_a_high=high,
    )


def gap_level(pad: float, mmd2: float) -> Level:
    """The gap level from the proxy A-distance, with MMD² confirming a far one.

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
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    max_samples: int = 2000,
    components: int | None = None,
    repeats: int = 1,
) -> float:
    """Proxy A-distance ``2 (1 - 2 err)`` from a cross-validated linear domain classifier.

    The value of :func:`proxy_a_interval` without its interval (same arguments).
    """
    return proxy_a_interval(
        x, y, folds=folds, seed=seed, max_samples=max_samples, components=components,
        repeats=repeats,
    )[0]  # fmt: skip


def proxy_a_interval(
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    max_samples: int = 2000,
    components: int | None = None,
    repeats: int = 1,
) -> tuple[float, float, float]:
    """Proxy A-distance ``2 (1 - 2 err)`` with a 95% interval.

    Both sides are subsampled to the same size ``n`` (at most ``max_samples``) so that chance
    is 50%; ``err`` is the out-of-fold error of a logistic regression on standardized features,
    averaged over ``repeats`` rounds (each a new subsample and new folds). With
    ``components``, the classifier sees only the projection on the first sample's (the
    source's) top principal components: on 1280-d features a linear classifier separates any
    two image collections (PAD about 2 for all of them), while along the directions in which
    the source varies most, other photographs overlap it and digits do not. The interval is
    the Wilson 95% interval of ``err`` over ``2n`` held-out predictions, widened to cover every
    round's value. Clipped to ``[0, 2]``: 0 = indistinguishable, 2 = perfectly separable.

    Args:
        x: first sample (the source when ``components`` is set).
        y: second sample.
        folds: cross-validation folds.
        seed: seed for subsampling and fold assignment.
        max_samples: at most this many samples per side.
        components: project on this many principal components of ``x``; None = all features.
        repeats: cross-validation rounds averaged.

    Shape:
        x: ``(n1, d)``; y: ``(n2, d)``.

    Returns:
        ``(pad, low, high)``.
    """
    a, b = _pair(x, y)
    if folds < 2:
        raise ConfigError(f"folds must be at least 2, got {folds}")
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    n = min(len(a), len(b), max_samples)
    if n < folds:
        raise DataError(f"proxy_a_distance needs at least folds={folds} samples per side, got {n}")
    if components is not None:
        a, b = _source_projection(a, b, components)
    rng = np.random.default_rng(seed)
    errors = [
        _domain_error(_subsample(a, n, rng), _subsample(b, n, rng), folds, seed + r)
        for r in range(repeats)
    ]
    err = float(np.mean(errors))
    low, high = _wilson(err, 2 * n)
    low, high = min(low, *errors), max(high, *errors)
    return _pad(err), _pad(high), _pad(low)


def _pad(err: float) -> float:
    return float(np.clip(2.0 * (1.0 - 2.0 * err), 0.0, 2.0))


def _wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def _source_projection(
    a: np.ndarray, b: np.ndarray, components: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both sides standardized by ``a``'s statistics, on ``a``'s top principal components."""
    if components < 1:
        raise ConfigError(f"components must be at least 1, got {components}")
    mean, std = a.mean(axis=0), a.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    za, zb = (a - mean) / std, (b - mean) / std
    _, _, vt = np.linalg.svd(za, full_matrices=False)
    basis = vt[: min(components, len(vt))].T
    return za @ basis, zb @ basis


def _domain_error(a: np.ndarray, b: np.ndarray, folds: int, seed: int) -> float:
    """Out-of-fold error of a logistic regression telling ``a`` (0) from ``b`` (1)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = np.vstack([a, b])
    domain = np.repeat([0, 1], [len(a), len(b)])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # An unconverged fit on separable domains is still a perfect classifier.
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred = cross_val_predict(clf, data, domain, cv=cv)
    return float(np.mean(pred != domain))


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
