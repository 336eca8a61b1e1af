"""H-score against the published formula (np.cov + pinv) and Ledoit-Wolf against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.covariance import ledoit_wolf_shrinkage as sk_shrinkage

from graft.measure.scores import hscore, ledoit_wolf_shrinkage


def reference_hscore(f: np.ndarray, y: np.ndarray) -> float:
    """Bao et al.'s H-score as commonly implemented: tr(pinv(cov f) cov g)."""
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    return float(np.trace(np.linalg.pinv(np.cov(f, rowvar=False)) @ np.cov(g, rowvar=False)))


def reference_shrinkage_hscore(f: np.ndarray, y: np.ndarray) -> float:
    """Ibrahim et al.: tr(LW(cov f)^-1 (1 - a) cov g) with scikit-learn's Ledoit-Wolf."""
    lw = LedoitWolf().fit(f)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    cov_g = np.cov(g, rowvar=False, bias=True)  # sklearn's covariance_ also divides by n
    return float(np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * cov_g)))


def test_matches_reference_formula() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 120)
    f = rng.normal(size=(120, 7)) + 1.5 * np.eye(4, 7)[y]
    assert hscore(f, y) == pytest.approx(reference_hscore(f, y), rel=1e-10)


def test_one_dimensional_hand_case() -> None:
    # Classes at 0 and 1 without spread: all variance is between classes, H = C - 1 = 1.
    f = np.array([[0.0], [0.0], [1.0], [1.0]])
    assert hscore(f, np.array([0, 0, 1, 1])) == pytest.approx(1.0)


def test_ledoit_wolf_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    for n, d in [(50, 10), (20, 60)]:
        x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        x -= x.mean(axis=0)
        expected = sk_shrinkage(x, assume_centered=True)
        assert ledoit_wolf_shrinkage(x) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n,d", [(80, 6), (30, 50)])
def test_shrinkage_matches_reference(n: int, d: int) -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, n)
    f = rng.normal(size=(n, d)) + np.eye(3, d)[y]
    assert hscore(f, y, shrinkage=True) == pytest.approx(reference_shrinkage_hscore(f, y), rel=1e-8)


def test_shrinkage_tames_more_dimensions_than_samples() -> None:
    # With d > n the plain pseudo-inverse explains noise perfectly; shrinkage does not.
    rng = np.random.default_rng(3)
    y = np.arange(30) % 3
    noise = rng.normal(size=(30, 200))
    assert hscore(noise, y) == pytest.approx(2.0, rel=1e-6)  # C - 1: a meaningless maximum
    signal = noise + 5.0 * np.eye(3, 200)[y]
    assert hscore(noise, y, shrinkage=True) < 1.0
    assert hscore(signal, y, shrinkage=True) > 2 * hscore(noise, y, shrinkage=True)
