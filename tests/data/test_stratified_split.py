"""The NumPy stratified split gives scikit-learn's split index for index, for every seed tried."""

from __future__ import annotations

import numpy as np
import pytest

from graft.data.splits import stratified_split


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 12345])
@pytest.mark.parametrize(
    ("counts", "n_out"),
    [([15] * 10, 30), ([15] * 10, 23), ([3, 50, 7, 20], 16), ([2, 2, 2, 9, 40], 11), ([5, 6], 3)],
)
def test_same_split_as_scikit_learn(counts: list[int], n_out: int, seed: int) -> None:
    from sklearn.model_selection import train_test_split

    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    idx = np.arange(len(labels))
    want_kept, want_out = train_test_split(idx, test_size=n_out, random_state=seed, stratify=labels)
    kept, out = stratified_split(labels, n_out, seed)
    np.testing.assert_array_equal(np.sort(kept), np.sort(want_kept))
    np.testing.assert_array_equal(np.sort(out), np.sort(want_out))


def test_refuses_what_scikit_learn_refuses() -> None:
    with pytest.raises(ValueError):
        stratified_split(np.array([0, 0, 1]), 1, 0)
    with pytest.raises(ValueError):
        stratified_split(np.repeat(np.arange(5), 3), 3, 0)
