"""The measure layer: stored features per split, source probabilities, reference sample, rank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graft.data import load as load_data
from graft.errors import ConfigError
from graft.testing import tiny_backbone
from graft.workflows import measure

TINY = "timm:test_efficientnet@random@32"


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graft.data.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("d") / "digits", per_class=8, seed=1)


def test_split_features_are_the_stored_ones_and_reused(small_digits: Path, tmp_path: Path) -> None:
    data = load_data(small_digits)
    bb = tiny_backbone()
    cfg = measure.store_config(str(tmp_path))
    first = measure.split_features(bb, data, cfg)
    again = measure.split_features(bb, data, cfg)
    assert first.computed == len(data.train) + len(data.val) and again.computed == 0
    assert again.reused == first.computed
    with torch.inference_mode():
        direct = bb.eval()(torch.stack([_load(bb, p) for p in data.val.paths[:3]])).numpy()
    np.testing.assert_allclose(first.features["val"][:3], direct, rtol=1e-4, atol=1e-5)
    x, y = first.joined()
    assert x.shape == (len(data.train) + len(data.val), bb.num_features) and len(y) == len(x)


def _load(bb: object, path: Path) -> torch.Tensor:
    from graft.model import GraftModel
    from graft.tasks.base import Classification
    from graft.training.loaders import FileLoader

    return FileLoader(GraftModel(bb, Classification.spec_for(["a", "b"])))(path)  # type: ignore[arg-type]


def test_source_probabilities_match_the_source_classifier() -> None:
    bb = tiny_backbone().eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        feats, logits = bb(x).numpy(), bb.source_logits(x)
    probs = measure.source_probabilities(bb, feats)
    np.testing.assert_allclose(probs, torch.softmax(logits.double(), 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0)


def test_parse_candidate_tags() -> None:
    assert measure.parse_candidate("timm:resnet18@random@112") == ("timm:resnet18", False, 112)
    assert measure.parse_candidate("efficientnet_lite0") == ("efficientnet_lite0", True, None)
    with pytest.raises(ConfigError, match="@random"):
        measure.parse_candidate("efficientnet_lite0@big")


def test_reference_sample_only_for_bundled_weights_at_a_known_size() -> None:
    from graft.backbones import create as make_backbone

    ref, _ = measure.reference_features(make_backbone("efficientnet_lite0", image_size=64))
    assert ref is not None and ref.shape[1] == 1280 and ref.dtype == np.float32
    assert np.isfinite(ref).all() and ref.std(axis=0).max() > 0
    none, why = measure.reference_features(make_backbone("efficientnet_lite0", image_size=40))
    assert none is None and "--image-size" in why
    none, why = measure.reference_features(tiny_backbone())
    assert none is None and "no reference sample" in why


def test_rank_stores_features_so_fit_runs_no_backbone_pass(
    small_digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graft
    import graft.measure.features

    ranking = graft.rank(
        small_digits, backbones=[TINY, "timm:test_efficientnet@random@48"], cache_dir=str(tmp_path)
    )
    assert all(r.computed > 0 and r.reused == 0 for r in ranking.rows)
    assert all(r.score is not None and np.isfinite(r.score) for r in ranking.rows)
    assert ranking.rows[0].score >= ranking.rows[1].score  # type: ignore[operator]
    assert "--no-pretrained" in ranking.recommendation()

    def no_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("fit ran the backbone although rank stored its features")

    monkeypatch.setattr(graft.measure.features, "_compute", no_pass)
    model = graft.fit(
        small_digits,
        backbone="timm:test_efficientnet",
        pretrained=False,
        image_size=32,
        strategy="feature_extraction",
        epochs=1,
        cache_dir=str(tmp_path),
        progress=False,
        log=lambda _: None,
    )
    assert model.info["history"]


def test_rank_reports_a_score_that_cannot_apply(small_digits: Path, tmp_path: Path) -> None:
    ranking = measure.rank(
        small_digits,
        backbones=[TINY],
        score="logme",
        task="classification",
        cache_dir=str(tmp_path),
    )
    assert ranking.best is not None
    with pytest.raises(ConfigError, match="classification and regression"):
        measure.measure_score(
            "logme", tiny_backbone(), np.zeros((4, 2)), np.zeros((4, 2)), "multilabel"
        )


def test_similarity_of_a_folder_with_itself_is_near(small_digits: Path, tmp_path: Path) -> None:
    gap = measure.similarity(
        small_digits, small_digits, backbone=tiny_backbone(), cache_dir=str(tmp_path)
    )
    assert gap.level == "near" and gap.proxy_a_distance == 0.0 and gap.mmd < 0.01


def test_cache_info_and_clear(small_digits: Path, tmp_path: Path) -> None:
    measure.rank(small_digits, backbones=[TINY], cache_dir=str(tmp_path))
    (entry,) = measure.cache_info(cache_dir=str(tmp_path))
    assert entry["rows"] > 0 and entry["bytes"] > 0
    assert measure.cache_clear(backbone="nothing-such", cache_dir=str(tmp_path)) == 0
    assert measure.cache_clear(cache_dir=str(tmp_path)) == entry["bytes"]
    assert measure.cache_info(cache_dir=str(tmp_path)) == []


def test_similarity_refuses_constant_features(small_digits: Path, tmp_path: Path) -> None:
    from graft.errors import DataError

    # The bundled backbone outputs all-zero features at 32 px: no gap can be read from them.
    with pytest.raises(DataError, match="--image-size"):
        measure.similarity(small_digits, small_digits, image_size=32, cache_dir=str(tmp_path))
