"""A saved text model as a backbone (``graft:PATH``): encoder, text settings and tokenizer from
the artifact folder alone, its head kept as the source classifier."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import graft
from graft.backbones import from_spec
from graft.backbones.text import TextBackbone, TextSourceNet
from graft.cli import main
from graft.errors import ArtifactError, ConfigError
from graft.testing import tiny_text_backbone

QUIET = {"progress": False, "log": lambda s: None}
TEXTS = ["the match ended in a draw after extra time", "shares fell as the bank cut its outlook"]


def _fit(data: Path, out: Path, **kw: object) -> graft.GraftModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BBC articles are longer than the tiny encoder reads
        return graft.fit(data, epochs=1, out=out, **QUIET, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def text_source(bbc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("text-source") / "news"
    _fit(bbc_dir, out, backbone=tiny_text_backbone(), strategy="feature_extraction")
    return out


def test_encoder_tokenizer_and_head_reproduce_the_saved_model(text_source: Path) -> None:
    saved = graft.load(text_source)
    bb = graft.backbone(f"graft:{text_source}")
    assert isinstance(bb, TextBackbone) and isinstance(bb.model, TextSourceNet)
    assert bb.spec.source == "graft" and bb.spec.arch == "bert"
    assert bb.group_names == saved.backbone.group_names == ["embeddings", "layer.0", "layer.1"]
    grouped = {n for g in bb.groups for n in g.param_names}
    head = {f"classifier.{n}" for n, _ in bb.model.classifier.named_parameters()}
    assert grouped | head == {n for n, _ in bb.model.named_parameters()}
    assert bb.text_config == saved.backbone.text_config  # type: ignore[union-attr]
    x = bb.encode(TEXTS)
    assert torch.equal(x, saved.backbone.encode(TEXTS))  # type: ignore[operator]
    with torch.no_grad():
        torch.testing.assert_close(bb.source_logits(x), saved(x))
        torch.testing.assert_close(bb(x), saved.backbone(x))
        rebuilt = from_spec(bb.spec, load_weights=True)  # from the source folder, sha checked
        torch.testing.assert_close(rebuilt.source_logits(x), saved(x))


def test_feature_store_identity_follows_weights_and_tokenizer(
    text_source: Path, bbc_dir: Path, tmp_path: Path
) -> None:
    first = graft.backbone(f"graft:{text_source}")
    assert graft.backbone(f"graft:{text_source}").identity() == first.identity()
    other = tmp_path / "other"  # the same recipe on other initial weights
    _fit(bbc_dir, other, backbone=tiny_text_backbone(seed=1), strategy="feature_extraction")
    assert graft.backbone(f"graft:{other}").identity() != first.identity()
    edited = tmp_path / "edited"  # the same weights, a tokenizer that no longer lower-cases
    shutil.copytree(text_source, edited)
    file = edited / "tokenizer" / "tokenizer.json"
    state = json.loads(file.read_text())
    state["normalizer"]["lowercase"] = False
    file.write_text(json.dumps(state))
    assert graft.backbone(f"graft:{edited}").identity() != first.identity()


def test_fit_from_a_saved_text_model_saves_loads_and_predicts(
    text_source: Path, bbc_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "target"
    model = _fit(bbc_dir, out, backbone=f"graft:{text_source}", strategy="full")
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"]["source"] == "graft"
    assert config["backbone"]["kwargs"]["chain"] == [str(text_source.resolve())]
    assert config["backbone"]["kwargs"]["root"]["arch"] == "bert"
    assert model.info["retention"]["reference"].endswith("texts")  # the source head is kept
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    loaded = graft.load(out)
    np.testing.assert_allclose(
        loaded.predict_outputs(TEXTS), model.predict_outputs(TEXTS), rtol=1e-5, atol=1e-6
    )
    chained = graft.backbone(f"graft:{out}")  # chains stay flat: the root encoder, one head
    assert not isinstance(chained.model.body, TextSourceNet)
    assert chained.spec.kwargs["chain"] == [str(text_source.resolve()), str(out.resolve())]


def test_fit_from_a_saved_text_model_on_the_command_line(
    text_source: Path, bbc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["fit", str(bbc_dir), "--backbone", f"graft:{text_source}", "--strategy",
            "two-stage", "--epochs", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0
    printed = capsys.readouterr().out
    assert "layer.1" in printed and "test metrics" in printed and "retention" in printed
    assert main(["predict", str(out), "--text", TEXTS[0], "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["prediction"] in {p.name for p in bbc_dir.iterdir()}


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("missing tokenizer", "tokenizer.json: missing"),
        ("tokenizer not json", "tokenizer.json: not a tokenizer file"),
        ("config not json", "tokenizer_config.json: not readable JSON"),
        ("pad token not text", "tokenizer_config.json: field pad_token"),
        ("encoder family", "config.json: field backbone.kwargs.config.model_type"),
        ("text settings", "config.json: field backbone.kwargs.text.pooling"),
    ],
)
def test_crafted_text_artifacts_name_the_file(
    text_source: Path, tmp_path: Path, damage: str, named: str
) -> None:
    folder = tmp_path / "crafted"
    shutil.copytree(text_source, folder)
    tok, config = folder / "tokenizer", folder / "config.json"
    if damage == "missing tokenizer":
        (tok / "tokenizer.json").unlink()
    elif damage == "tokenizer not json":
        (tok / "tokenizer.json").write_text('{"version": "1.0", "model": 5}')
    elif damage == "config not json":
        (tok / "tokenizer_config.json").write_text("{not json")
    elif damage == "pad token not text":
        cfg = json.loads((tok / "tokenizer_config.json").read_text())
        (tok / "tokenizer_config.json").write_text(json.dumps({**cfg, "pad_token": [0]}))
    else:
        data = json.loads(config.read_text())
        if damage == "encoder family":
            data["backbone"]["kwargs"]["config"]["model_type"] = "gpt2"
        else:
            data["backbone"]["kwargs"]["text"]["pooling"] = ["max"]
        config.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=named.replace(".", r"\.")):
        graft.backbone(f"graft:{folder}")
    with pytest.raises(ArtifactError, match=named.replace(".", r"\.")):
        graft.load(folder)


def test_a_tokenizer_config_naming_code_is_read_as_data(text_source: Path, tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    shutil.copytree(text_source, folder)
    marker = tmp_path / "ran"
    (folder / "tokenizer" / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "class EvilTokenizer:\n    pass\n"
    )
    file = folder / "tokenizer" / "tokenizer_config.json"
    cfg = json.loads(file.read_text())
    cfg.update(
        tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": ["evil.EvilTokenizer", None]}
    )
    file.write_text(json.dumps(cfg))
    bb = graft.backbone(f"graft:{folder}")
    assert not marker.exists()
    assert torch.equal(bb.encode(TEXTS), graft.load(text_source).backbone.encode(TEXTS))  # type: ignore[operator]


def test_retention_data_is_for_images(text_source: Path, bbc_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--retention-data .* reads text"):
        _fit(bbc_dir, tmp_path / "m", backbone=f"graft:{text_source}", strategy="full",
             retention_data=bbc_dir)  # fmt: skip
