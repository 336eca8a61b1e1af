"""Domain gap: MMD, proxy A-distance and CORAL against explicit implementations and real data."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from graft.errors import ConfigError, DataError
from graft.measure.gap import (
    FAR_ABOVE,
    MMD_FAR_ABOVE,
    NEAR_BELOW,
    GapReport,
    coral_distance,
    domain_gap,
    gap_level,
    mmd,
    proxy_a_distance,
    proxy_a_interval,
)


def loop_mmd(x: np.ndarray, y: np.ndarray, widths: list[float]) -> float:
    """Gretton et al. (2012), eq. (3), with double loops."""

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean([np.exp(-np.sum((a - b) ** 2) / (2 * s * s)) for s in widths]))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@cache
def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float64)[:600]


def test_mmd_matches_double_loop() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(loc=0.5, size=(9, 3))
    assert mmd(x, y, bandwidths=[0.7, 2.0]) == pytest.approx(loop_mmd(x, y, [0.7, 2.0]), abs=1e-12)
    pooled = np.vstack([x, y])
    d2 = [np.sum((a - b) ** 2) for i, a in enumerate(pooled) for b in pooled[i + 1 :]]
    median_width = float(np.sqrt(np.median(d2) / 2))
    assert mmd(x, y) == pytest.approx(loop_mmd(x, y, [median_width]), abs=1e-12)


def test_mmd_near_zero_for_one_distribution_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    x, y, z = rng.normal(size=(300, 5)), rng.normal(size=(300, 5)), rng.normal(2, size=(300, 5))
    assert abs(mmd(x, y)) < 0.01
    assert mmd(x, z) > 0.3
    assert mmd(x, z) == pytest.approx(mmd(z, x), abs=1e-12)


def test_mmd_subsamples_reproducibly() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(500, 4)), rng.normal(1, size=(400, 4))
    assert mmd(x, y, max_samples=100, seed=3) == mmd(x, y, max_samples=100, seed=3)
    assert mmd(x, y, max_samples=100) == pytest.approx(mmd(x, y), abs=0.1)


def test_coral_matches_explicit_formula() -> None:
    x = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    y = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 2.0], [4.0, 1.0]])
    # Covariances by hand (n - 1); y's deviations (-1.25, -.25, -1.25, 2.75) and (-1, 0, 1, 0)
    # are uncorrelated.
    cx = np.array([[1.0, 1.5], [1.5, 13 / 3]])
    cy = np.array([[43 / 12, 0.0], [0.0, 2 / 3]])
    assert np.allclose(cx, np.cov(x, rowvar=False)) and np.allclose(cy, np.cov(y, rowvar=False))
    assert coral_distance(x, y) == pytest.approx(np.sum((cx - cy) ** 2) / 16, abs=1e-12)
    assert coral_distance(x, x) == 0.0


def test_proxy_a_distance_extremes() -> None:
    rng = np.random.default_rng(4)
    same = proxy_a_distance(rng.normal(size=(300, 6)), rng.normal(size=(300, 6)))
    apart = proxy_a_distance(rng.normal(size=(300, 6)), rng.normal(3, size=(300, 6)))
    assert 0.0 <= same < 0.3
    assert apart == 2.0


def test_proxy_a_distance_balances_sizes() -> None:
    # 1000 vs 100 samples from one distribution: predicting the majority would give err 9%
    # and a PAD of 1.6 if sizes were not balanced.
    rng = np.random.default_rng(5)
    assert proxy_a_distance(rng.normal(size=(1000, 4)), rng.normal(size=(100, 4))) < 0.5


def test_calibrated_levels_on_digits() -> None:
    x = digits()
    perm = np.random.default_rng(6).permutation(len(x))
    split = domain_gap(x[perm[:300]], x[perm[300:]])
    writers = domain_gap(x[:300], x[300:600])  # ordered halves: different groups of writers
    shifted = np.roll(x.reshape(-1, 8, 8), 1, axis=2).reshape(-1, 64)[300:600]  # one pixel
    shift = domain_gap(x[:300], shifted)
    noise = domain_gap(x[:300], np.random.default_rng(7).uniform(0, 16, size=(300, 64)))
    levels = (split.level, writers.level, shift.level, noise.level)
    assert levels == ("near", "near", "far", "far")
    assert split.proxy_a_distance < writers.proxy_a_distance < shift.proxy_a_distance
    assert writers.proxy_a_high < shift.proxy_a_low  # intervals apart
    assert split.mmd < writers.mmd < noise.mmd
    for gap in (split, writers, shift, noise):
        assert gap.proxy_a_low <= gap.proxy_a_distance <= gap.proxy_a_high


def test_interval_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(2000, 6)), rng.normal(0.3, size=(2000, 6))
    _, lo_small, hi_small = proxy_a_interval(x[:100], y[:100], components=4)
    _, lo_big, hi_big = proxy_a_interval(x, y, components=4)
    assert hi_big - lo_big < hi_small - lo_small


def test_report_is_json_ready_and_readable() -> None:
    x = digits()
    report = domain_gap(x[:200], x[200:400])
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {f for f in GapReport.__dataclass_fields__}
    assert data["level"] in ("near", "moderate", "far") and data["dim"] == 64
    assert data["reading"].startswith(data["level"])
    assert (data["n_source"], data["n_target"]) == (200, 200)


def test_levels_follow_thresholds() -> None:
    big = 2 * MMD_FAR_ABOVE
    assert gap_level(0.0, big) == "near" and gap_level(2.0, big) == "far"
    assert gap_level((NEAR_BELOW + FAR_ABOVE) / 2, big) == "moderate"
    assert gap_level(2.0, MMD_FAR_ABOVE / 2) == "moderate"  # separable, but barely shifted


@pytest.mark.filterwarnings("error")
def test_constant_columns_and_wide_features() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 100)), rng.normal(size=(20, 100))
    x[:, :10] = 0.0
    y[:, :10] = 0.0
    report = domain_gap(x, y)
    assert all(np.isfinite([report.mmd, report.proxy_a_distance, report.coral]))
    assert np.isfinite(mmd(np.zeros((5, 3)), np.zeros((5, 3))))  # all distances zero


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match="same backbone"):
        domain_gap(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(DataError, match="at least folds=5"):
        proxy_a_distance(np.zeros((3, 2)), np.ones((30, 2)))
    with pytest.raises(ConfigError, match="bandwidths"):
        mmd(np.zeros((3, 2)), np.ones((3, 2)), bandwidths=[0.0])
