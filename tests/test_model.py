"""The model artifact: round trip, atomic save, and clear errors for damaged artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graft
from graft.errors import ArtifactError
from graft.testing import tiny_backbone


@pytest.fixture(scope="module")
def trained(
    digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[graft.GraftModel, Path]:
    out = tmp_path_factory.mktemp("artifact") / "model"
    model = graft.fit(
        digits_dir,
        backbone=tiny_backbone(image_size=32),
        strategy="feature_extraction",
        epochs=2,
        progress=False,
        out=out,
        log=lambda s: None,
    )
    return model, out


def test_round_trip_gives_identical_predictions(
    trained: tuple[graft.GraftModel, Path], digits_dir: Path
) -> None:
    model, out = trained
    files = sorted((digits_dir / "3").iterdir())[:5]
    loaded = graft.load(out)
    a = model.predict_outputs(files)
    b = loaded.predict_outputs(files)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert loaded.task_spec == model.task_spec
    assert loaded.info["plan"]["strategy"] == "feature_extraction"
    assert set(loaded.info["metrics"]) >= {"val", "test"}
    config = json.loads((out / "config.json").read_text())
    assert config["graft_version"] == graft.__version__
    assert config["task"]["class_names"] == [str(i) for i in range(10)]


def test_predict_records(trained: tuple[graft.GraftModel, Path], digits_dir: Path) -> None:
    model, _ = trained
    rows = model.predict([digits_dir / "5"])
    assert len(rows) == 15
    assert set(rows[0]) == {"path", "prediction", "probability"}
    assert 0.0 <= rows[0]["probability"] <= 1.0


def test_save_replaces_atomically(trained: tuple[graft.GraftModel, Path], tmp_path: Path) -> None:
    model, _ = trained
    target = model.save(tmp_path / "m")
    model.save(target)  # overwrite an existing artifact
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary leftovers"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="not a graft model"):
        model.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_damaged_artifacts_are_rejected(
    trained: tuple[graft.GraftModel, Path], tmp_path: Path
) -> None:
    _, out = trained
    with pytest.raises(ArtifactError, match="no such folder"):
        graft.load(tmp_path / "missing")
    bad = _copy(out, tmp_path / "bad-json")
    (bad / "config.json").write_text("{ not json")
    with pytest.raises(ArtifactError, match="damaged"):
        graft.load(bad)
    newer = _copy(out, tmp_path / "newer")
    cfg = json.loads((newer / "config.json").read_text())
    cfg["format_version"] = 99
    (newer / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="newer"):
        graft.load(newer)
    truncated = _copy(out, tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="damaged"):
        graft.load(truncated)
    nowts = _copy(out, tmp_path / "noweights")
    (nowts / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        graft.load(nowts)
    wrong = _copy(out, tmp_path / "wrong")
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["task"]["num_outputs"] = 3
    cfg["task"]["class_names"] = ["a", "b", "c"]
    (wrong / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match=r"do not match|damaged"):
        graft.load(wrong)


def test_evaluate_maps_class_names(
    trained: tuple[graft.GraftModel, Path], digits_dir: Path
) -> None:
    model, _ = trained
    metrics = model.evaluate(digits_dir)
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_mc_dropout_reports_a_spread(
    digits_dir: Path, trained: tuple[graft.GraftModel, Path]
) -> None:
    from graft.errors import ConfigError

    model, _ = trained
    files = sorted((digits_dir / "1").iterdir())[:3]
    with pytest.raises(ConfigError, match="--dropout"):
        model.predict(files, mc_samples=5)
    noisy = graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), strategy="feature_extraction",
        epochs=2, dropout=0.5, progress=False, log=lambda s: None,
    )  # fmt: skip
    rows = noisy.predict(files, mc_samples=8)
    assert all(r["probability_std"] > 0 for r in rows)
    plain = noisy.predict(files)
    assert "probability_std" not in plain[0]
    again = noisy.predict(files)
    assert plain == again, "without --mc-samples dropout stays off: predictions are deterministic"
