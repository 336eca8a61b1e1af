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
    # issue 14: the artifact gains its model card (README.md)
    assert sorted(p.name for p in target.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
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


def test_the_run_record_is_saved_typed_and_versioned(
    trained: tuple[graft.GraftModel, Path],
) -> None:
    from graft.record import RECORD_VERSION, RunRecord

    model, out = trained
    saved = json.loads((out / "config.json").read_text())
    assert "info" not in saved and saved["format_version"] == 2
    record = RunRecord.from_dict(saved["record"])
    assert record.version == RECORD_VERSION and record.graft_version == graft.__version__
    assert record.plan is not None and record.plan["strategy"] == "feature_extraction"
    assert record.config is not None and record.config["tuning"]["epochs"] == 2
    assert record.history and set(record.metrics) >= {"val", "test"}
    assert record.data["n_test"] > 0 and record.seconds is not None
    assert graft.load(out).record.to_dict() == _as_json(model.record.to_dict())


def _as_json(value: object) -> object:
    from graft.model import json_default

    return json.loads(json.dumps(value, default=json_default))


def _as_release_0_1_0_saved_it(model: graft.GraftModel, folder: Path) -> Path:
    """The artifact as graft 0.1.0 (commit 7fd62f1) wrote it: format 1, a free "info" dict."""
    model.save(folder)
    config = json.loads((folder / "config.json").read_text())
    record = config.pop("record")
    info = {k: v for k, v in record.items() if k not in ("extensions", "version", "config")}
    info = {k: v for k, v in info.items() if k != "graft_version" and v is not None}
    info.update(record["extensions"])
    config.update(format_version=1, graft_version="0.1.0", info=info)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def test_an_artifact_of_the_previous_release_still_loads(
    trained: tuple[graft.GraftModel, Path], tmp_path: Path, digits_dir: Path
) -> None:
    from graft.config import FitConfig
    from graft.errors import ConfigError

    model, _ = trained
    old = _as_release_0_1_0_saved_it(model, tmp_path / "old")
    loaded = graft.load(old)
    assert loaded.record.plan == _as_json(model.record.plan)
    assert loaded.record.metrics == _as_json(model.record.metrics)
    assert loaded.record.config is None, "0.1.0 did not save its configuration"
    assert loaded.evaluate(digits_dir) == pytest.approx(model.evaluate(digits_dir))
    with pytest.raises(ConfigError, match=r"no saved configuration .* pass the options again"):
        FitConfig.load(old)
    loaded.save(tmp_path / "resaved")  # re-saving writes the current format
    assert json.loads((tmp_path / "resaved" / "config.json").read_text())["format_version"] == 2


def test_a_newer_record_is_refused(trained: tuple[graft.GraftModel, Path], tmp_path: Path) -> None:
    model, _ = trained
    folder = model.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["record"]["version"] = 99
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="run record version 99 is newer"):
        graft.load(folder)
