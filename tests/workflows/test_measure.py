"""The measuring workflows: rank, similarity, the feature store's info and clear."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graft.errors import ConfigError
from graft.testing import tiny_backbone
from graft.workflows import measure

TINY = "timm:test_efficientnet@random@32"


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graft.data.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("d") / "digits", per_class=8, seed=1)


def test_parse_candidate_tags() -> None:
    assert measure.parse_candidate("timm:resnet18@random@112") == ("timm:resnet18", False, 112)
    assert measure.parse_candidate("efficientnet_lite0") == ("efficientnet_lite0", True, None)
    with pytest.raises(ConfigError, match="@random"):
        measure.parse_candidate("efficientnet_lite0@big")


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

    computed: list[Path] = []
    real_compute = graft.measure.features._compute

    def only_test_files(
        backbone: object, entry: object, missing: dict, *rest: object, **kw: object
    ) -> None:
        computed.extend(missing.values())  # rank measured train and val only
        real_compute(backbone, entry, missing, *rest, **kw)

    monkeypatch.setattr(graft.measure.features, "_compute", only_test_files)
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
    test = graft.data.load(small_digits, seed=0).test
    assert test is not None and len(test)
    # Train and val came from rank's store; only the final evaluation's test split was computed.
    assert sorted(map(str, computed)) == sorted(map(str, test.paths))


def test_rank_reports_a_score_that_cannot_apply(small_digits: Path, tmp_path: Path) -> None:
    ranking = measure.rank(
        small_digits,
        backbones=[TINY],
        score="logme",
        task="classification",
        cache_dir=str(tmp_path),
    )
    assert ranking.best is not None


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
