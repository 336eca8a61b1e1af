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


def test_the_splits_run_as_one_pass_and_stay_aligned_around_an_unreadable_file(
    small_digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train and val go through the backbone in one extraction; a file that fails to decode
    drops its own row only, so every split's rows stay with their files and targets."""
    import shutil

    from graft.measure.features import FeatureStore

    root = tmp_path / "digits"
    shutil.copytree(small_digits, root)
    data = load(root)
    broken = data.train.paths[2]
    broken.write_bytes(b"not a png")  # damaged after loading: it fails in the pass itself
    calls: list[int] = []
    real = FeatureStore.extract

    def extract(self: FeatureStore, backbone: object, paths: list[Path], **kw: object) -> object:
        calls.append(len(paths))
        return real(self, backbone, paths, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(FeatureStore, "extract", extract)
    bb = tiny_backbone()
    with pytest.warns(UserWarning, match="failed to decode"):
        feats = split_features(bb, data, store_config(str(tmp_path / "cache")))
    assert calls == [len(data.train) + len(data.val)]
    kept = [i for i, p in enumerate(data.train.paths) if p != broken]
    assert len(feats.features["train"]) == len(kept) == len(data.train) - 1
    np.testing.assert_array_equal(feats.targets["train"], data.train.targets[kept])
    np.testing.assert_array_equal(feats.targets["val"], data.val.targets)
    for name, split, rows in (("train", data.train, kept[2:5]), ("val", data.val, [0, 1, 2])):
        with torch.inference_mode():
            direct = bb.eval()(torch.stack([_load(bb, split.paths[i]) for i in rows])).numpy()
        at = [kept.index(i) for i in rows] if name == "train" else rows
        np.testing.assert_allclose(feats.features[name][at], direct, rtol=1e-4, atol=1e-5)
