"""LEEP against the paper's formula written out by hand and as explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graft.errors import DataError
from graft.measure.scores import leep


def loop_leep(p: np.ndarray, y: np.ndarray) -> float:
    """Nguyen et al., eq. (1)-(2), with plain loops."""
    n, z_count = p.shape
    classes = sorted(set(y.tolist()))
    joint = {
        (c, z): sum(p[i, z] for i in range(n) if y[i] == c) / n
        for c in classes
        for z in range(z_count)
    }
    total = 0.0
    for i in range(n):
        inner = 0.0
        for z in range(z_count):
            pz = sum(joint[(c, z)] for c in classes)
            inner += joint[(y[i], z)] / pz * p[i, z]
        total += math.log(inner)
    return total / n


def test_three_by_two_toy_by_hand() -> None:
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    y = np.array([0, 0, 1])
    # P(y, z) = [[1.7, 0.3], [0.1, 0.9]] / 3; P(z) = [1.8, 1.2] / 3
    cond = np.array([[1.7 / 1.8, 0.3 / 1.2], [0.1 / 1.8, 0.9 / 1.2]])
    expected = np.mean([math.log(p[i] @ cond[y[i]]) for i in range(3)])
    assert leep(p, y) == pytest.approx(expected, abs=1e-12)
    assert leep(p, y) == pytest.approx(-0.24486, abs=1e-5)


def test_matches_loops_on_random_probabilities() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 6))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 40)
    assert leep(p, y) == pytest.approx(loop_leep(p, y), abs=1e-12)


def test_bounds_and_unused_source_class() -> None:
    # A source class with zero probability everywhere must not produce 0/0.
    p = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    assert leep(p, np.array([0, 0, 1, 1])) == pytest.approx(0.0, abs=1e-12)
    assert leep(p, np.array([0, 1, 0, 1])) == pytest.approx(math.log(0.5), abs=1e-12)


def test_rejects_logits_and_unnormalised_rows() -> None:
    y = np.array([0, 1])
    with pytest.raises(DataError, match="logits"):
        leep(np.array([[2.0, -1.0], [0.5, 0.5]]), y)
    with pytest.raises(DataError, match="row 1 sums to 2"):
        leep(np.array([[0.5, 0.5], [1.0, 1.0]]), y)
    with pytest.raises(DataError, match=r"shape \(3,\)"):
        leep(np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]), np.array([0, 1]))
