"""Stored features per split: the ones graft fit reads, computed once and then reused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graft.data import load
from graft.measure.stored import split_features, store_config
from graft.testing import tiny_backbone


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graft.data.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("d") / "digits", per_class=8, seed=1)


def test_split_features_are_the_stored_ones_and_reused(small_digits: Path, tmp_path: Path) -> None:
    data = load(small_digits)
    bb = tiny_backbone()
    cfg = store_config(str(tmp_path))
    first = split_features(bb, data, cfg)
    again = split_features(bb, data, cfg)
    assert first.computed == len(data.train) + len(data.val) and again.computed == 0
    assert again.reused == first.computed
    with torch.inference_mode():
        direct = bb.eval()(torch.stack([_load(bb, p) for p in data.val.paths[:3]])).numpy()
    np.testing.assert_allclose(first.features["val"][:3], direct, rtol=1e-4, atol=1e-5)
    x, y = first.joined()
    assert x.shape == (len(data.train) + len(data.val), bb.num_features) and len(y) == len(x)


def _load(bb: object, path: Path) -> torch.Tensor:
    from graft.model import GraftModel
    from graft.tasks import Classification
    from graft.training.loaders import FileLoader

    return FileLoader(GraftModel(bb, Classification.spec_for(["a", "b"])))(path)  # type: ignore[arg-type]
