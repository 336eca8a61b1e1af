"""The small text network trained from scratch (``small_text``), also as a saved source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import graft
from graft.backbones import create
from graft.errors import ArtifactError, BackboneError
from graft.model import GraftModel
from graft.tasks import Classification

TEXTS = ["Shares rose after the bank beat profit forecasts.", "The striker scored twice."]


@pytest.fixture(scope="module")
def small_text(minilm: object) -> object:
    del minilm  # its tokenizer ships with the bundled encoder: skipped without it
    torch.manual_seed(0)
    return create("small_text", pretrained=False, max_length=32)


def test_small_text_reads_token_ids_and_has_two_groups(small_text: object) -> None:
    bb = small_text
    assert bb.input_kind == "text" and bb.group_names == ["embeddings", "layer.0"]  # type: ignore[attr-defined]
    x = bb.encode(TEXTS)  # type: ignore[attr-defined]
    assert x.shape == (2, 2, 32)
    with torch.no_grad():
        out = bb(x)  # type: ignore[operator]
    assert out.shape == (2, 128) and torch.isfinite(out).all() and (out >= 0).all()  # ReLU, mean


def test_small_text_has_no_pretrained_weights(minilm: object) -> None:
    del minilm
    with pytest.raises(BackboneError, match="no pretrained weights"):
        create("small_text")


def test_small_text_model_saves_and_loads(small_text: object, tmp_path: Path) -> None:
    model = GraftModel(small_text, Classification.spec_for(["a", "b"])).eval()  # type: ignore[arg-type]
    folder = model.save(tmp_path / "m")
    loaded = graft.load(folder)
    assert loaded.predict(TEXTS) == model.predict(TEXTS)
    config = json.loads((folder / "config.json").read_text())
    config["backbone"]["kwargs"]["dim"] = 10**6  # a crafted size is refused before allocating
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"kwargs\.dim"):
        graft.load(folder)


def test_a_saved_small_text_model_is_a_source(small_text: object, tmp_path: Path) -> None:
    model = GraftModel(small_text, Classification.spec_for(["a", "b"])).eval()  # type: ignore[arg-type]
    folder = model.save(tmp_path / "m")
    bb = create(f"graft:{folder}")
    assert bb.group_names == ["embeddings", "layer.0"] and bb.spec.arch == "small_text"
    x = bb.encode(TEXTS)  # type: ignore[operator]
    with torch.no_grad():
        torch.testing.assert_close(bb.source_logits(x), model(x))
    again = GraftModel(bb, Classification.spec_for(["x", "y", "z"])).eval()
    loaded = graft.load(again.save(tmp_path / "again"))  # rebuilt without the source folder
    assert loaded.predict(TEXTS) == again.predict(TEXTS)
