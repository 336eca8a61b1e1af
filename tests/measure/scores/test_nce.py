"""NCE: -H(Y | Z) by counting, against hand-computed entropies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graft.errors import DataError
from graft.measure.scores import nce, score


def test_hand_computed_conditional_entropy() -> None:
    z = np.array([0, 0, 0, 0, 1, 1])
    y = np.array([0, 0, 0, 1, 1, 1])
    # Z=0 (p=2/3): Y ~ (3/4, 1/4); Z=1 (p=1/3): Y determined.
    h = 2 / 3 * -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert nce(z, y) == pytest.approx(-h, abs=1e-12)


def test_extremes() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    assert nce(np.array([5, 3, 9, 5, 3, 9]), y) == 0.0  # source labels determine targets
    # One source label: H(Y | Z) = H(Y) = log 3 for balanced classes.
    assert nce(np.zeros(6, dtype=int), y) == pytest.approx(-math.log(3), abs=1e-12)


def test_registered_entry_uses_argmax_of_source_probs() -> None:
    p = np.array([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
    y = np.array([1, 1, 0, 0])
    expected = nce(np.array([0, 0, 1, 1]), y)
    assert score("nce", source_probs=p, targets=y) == pytest.approx(expected)


def test_bad_shapes() -> None:
    with pytest.raises(DataError, match="source_labels"):
        nce(np.zeros((3, 2)), np.array([0, 1, 0]))
    with pytest.raises(DataError, match="target_labels"):
        nce(np.array([0, 1, 0]), np.array([0, 1]))
