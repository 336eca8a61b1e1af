"""A saved graft model as a backbone: its head becomes the source classifier; chains stay flat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import graft
from graft.backbones import from_spec
from graft.backbones.source_net import SourceNet
from graft.errors import ArtifactError, ConfigError
from graft.testing import tiny_backbone

QUIET = {"progress": False, "log": lambda s: None}


@pytest.fixture(scope="module")
def source(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("source") / "model"
    graft.fit(
        digits_dir,
        backbone=tiny_backbone(image_size=24),
        strategy="feature_extraction",
        epochs=1,
        out=out,
        **QUIET,
    )
    return out


def _inputs(model: graft.GraftModel) -> torch.Tensor:
    c, h, w = model.data_config.input_size
    return torch.randn(3, c, h, w, generator=torch.Generator().manual_seed(0))


def test_backbone_and_head_reproduce_the_saved_model(source: Path) -> None:
    saved = graft.load(source)
    bb = graft.backbone(str(source))
    assert isinstance(bb.model, SourceNet)
    assert bb.spec.source == "graft" and bb.spec.arch == saved.backbone.spec.arch
    assert bb.data_config == saved.data_config
    assert bb.group_names == saved.backbone.group_names
    grouped = {n for g in bb.groups for n in g.param_names}
    head = {f"classifier.{n}" for n, _ in bb.model.classifier.named_parameters()}
    assert grouped | head == {n for n, _ in bb.model.named_parameters()}
    x = _inputs(saved)
    with torch.no_grad():
        torch.testing.assert_close(bb.source_logits(x), saved(x))
        torch.testing.assert_close(bb(x), saved.backbone(x))
        rebuilt = from_spec(bb.spec, load_weights=True)  # from the source folder, sha checked
        torch.testing.assert_close(rebuilt.source_logits(x), saved(x))


def test_transfer_saves_and_loads_without_the_source(
    source: Path, digits_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "target"
    model = graft.fit(digits_dir, backbone=str(source), strategy="full", epochs=1, out=out, **QUIET)
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"]["source"] == "graft"
    assert config["backbone"]["kwargs"]["chain"] == [str(source.resolve())]
    assert "retention" in model.info  # the source head is the original classifier
    loaded = graft.load(out)
    files = sorted((digits_dir / "2").iterdir())[:3]
    np.testing.assert_allclose(
        model.predict_outputs(files), loaded.predict_outputs(files), rtol=1e-5, atol=1e-6
    )


def test_chains_stay_flat(source: Path, digits_dir: Path, tmp_path: Path) -> None:
    middle = tmp_path / "middle"
    graft.fit(
        digits_dir, backbone=str(source), strategy="feature_extraction", epochs=1, out=middle,
        **QUIET,
    )  # fmt: skip
    saved = graft.load(middle)
    bb = graft.backbone(str(middle))
    assert bb.spec.kwargs["chain"] == [str(source.resolve()), str(middle.resolve())]
    assert bb.spec.kwargs["root"]["source"] == "random"  # the tiny network the chain started on
    assert not isinstance(bb.model.body, SourceNet)
    x = _inputs(saved)
    with torch.no_grad():
        torch.testing.assert_close(bb.source_logits(x), saved(x))


def test_clear_errors(source: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--no-pretrained"):
        graft.backbone(str(source), pretrained=False)
    with pytest.raises(ConfigError, match="drop --weights"):
        graft.backbone(str(source), weights=tmp_path / "w.safetensors")
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ArtifactError, match="not a saved graft model"):
        graft.backbone(str(tmp_path / "not-a-model"))
