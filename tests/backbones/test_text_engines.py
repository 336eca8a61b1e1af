"""Text backbones through the frozen-pass engines: the ONNX Runtime export of the bundled minilm
gives eager's embeddings on real sentences, batch after batch of other lengths; its export is
cached and reused; ``GRAFT_ENGINE`` forces an engine for text; the store records which engine ran
and ``GraftModel.predict`` on texts takes the same path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from graft.backbones import create, engines
from graft.backbones.engines import ENGINES, choose_engine, equivalent
from graft.data.text import text_key
from graft.errors import ConfigError
from graft.measure.features import FeatureStore
from graft.training.loaders import TokenLoader

pytest.importorskip("onnxruntime")

SENTENCES = [
    "Rain.",
    "Shares fell.",
    "The central bank kept interest rates unchanged on Thursday.",
    "A man is eating a piece of bread in the kitchen.",
    "The striker scored twice in the second half as the home side came back to win the cup "
    "final, their first trophy in more than a decade.",
    "Engineers released an update to the phone's software that fixes the battery drain many "
    "owners had complained about since the autumn, the company said in a short statement.",
]


def _by_length(backbone: Any, texts: list[str]) -> torch.Tensor:
    """Packed tokens, shortest texts first (as graft's pass orders them)."""
    tokens = backbone.encode(texts, warn=False)
    return tokens[tokens[:, 1].sum(dim=1).argsort(stable=True)]


def _eager(minilm: Any, x: torch.Tensor) -> np.ndarray:
    return ENGINES.get("eager")(minilm, x).run(x)


def test_onnxruntime_matches_eager_on_batches_of_every_length(
    minilm: Any, exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    tokens = _by_length(minilm, SENTENCES)
    batches = [tokens[:2], tokens[2:4], tokens[4:], tokens[[0, 5, 2]]]
    lengths = [int(b[:, 1].sum(dim=1).max()) for b in batches]
    assert len(set(lengths)) == 3 and lengths[0] < 8 < lengths[2]  # short, mid, long, mixed
    attention = minilm.model.config._attn_implementation
    engine = ENGINES.get("onnxruntime")(minilm, batches[0])  # exported on the shortest texts
    assert minilm.model.config._attn_implementation == attention  # traced plain, then restored
    for batch in batches:
        got, reference = engine.run(batch), _eager(minilm, batch)
        assert got.shape == (len(batch), 384)
        assert equivalent(got, reference), float(np.abs(got - reference).max())
    same = minilm.encode(["one two three four", "five six seven eight"])  # no padding at all
    assert equivalent(engine.run(same), _eager(minilm, same))
    assert len(exports) == 1 and not minilm.training  # the export left it in eval mode


def test_the_text_export_is_cached_per_backbone_and_maximum_length(
    minilm: Any, exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    tokens = _by_length(minilm, SENTENCES)
    first = ENGINES.get("onnxruntime")(minilm, tokens[:2]).run(tokens)
    (model_file,) = (tmp_path / engines.ENGINE_CACHE).glob("*.onnx")
    record = json.loads(model_file.with_suffix(".json").read_text())
    assert record["input"] == [2, 256] and record["inputs"] == ["input_ids", "attention_mask"]
    again = ENGINES.get("onnxruntime")(minilm, tokens[4:]).run(tokens)  # other texts: reused
    assert len(exports) == 1 and np.array_equal(again, first)

    short = create("minilm", max_length=16)  # other text settings: another export
    cut = short.encode(SENTENCES, warn=False)
    got = ENGINES.get("onnxruntime")(short, cut).run(cut)
    assert len(exports) == 2 and len(list((tmp_path / engines.ENGINE_CACHE).glob("*.onnx"))) == 2
    assert equivalent(got, _eager(short, cut))


def _store_pass(minilm: Any, texts: list[str], root: Path) -> tuple[np.ndarray, list[str]]:
    tokens = minilm.encode(texts)
    feats = FeatureStore(root).extract(
        minilm,
        list(range(len(texts))),
        keys=[text_key(t) for t in texts],
        load=TokenLoader(tokens),
        order=tokens[:, 1].sum(dim=1).tolist(),
        transform_id=minilm.text_config.identity,
        batch_size=2,
        progress=False,
    )
    meta = json.loads(next(root.glob("*/meta.json")).read_text())
    return feats.to_array(), meta["engines"]


@pytest.mark.parametrize("forced", ["onnxruntime", ""])  # "": the automatic choice
def test_the_store_pass_takes_the_text_engines_and_records_the_one_that_ran(
    forced: str,
    minilm: Any,
    exports: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "text", 0.0)
    monkeypatch.setattr(engines, "PROBE_MIN_PASS_S", 0.0)
    monkeypatch.setenv("GRAFT_ENGINE", "eager")
    reference, used = _store_pass(minilm, SENTENCES, tmp_path / "eager")
    assert used == ["eager"]
    monkeypatch.setenv("GRAFT_ENGINE", forced)
    got, used = _store_pass(minilm, SENTENCES, tmp_path / "fast")
    assert len(used) == 1 and used[0] in engines.available("text") and len(exports) == 1
    if forced:
        assert used == [forced]
    assert equivalent(got, reference), float(np.abs(got - reference).max())
    assert engines.available("text") == ["onnxruntime", "eager"]


def test_an_engine_text_does_not_take_is_refused_by_name(
    minilm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = minilm.encode(SENTENCES[:2])
    monkeypatch.setenv("GRAFT_ENGINE", "channels_last")
    refused = r"GRAFT_ENGINE=channels_last: .* text backbones; .* one of eager, onnxruntime"
    with (
        pytest.raises(ConfigError, match=refused),
        choose_engine(minilm, x, input_kind="text", files=2),
    ):
        pass


def test_few_texts_run_eager_without_an_export(
    minilm: Any, exports: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    x = minilm.encode(SENTENCES)
    with choose_engine(minilm, x, input_kind="text", files=len(SENTENCES)) as engine:
        assert engine.name == "eager"
    with choose_engine(minilm, x, input_kind="text", files=0) as engine:  # unknown: no export
        assert engine.name == "eager"
    assert not exports


def test_predict_on_texts_runs_through_the_engine_path(
    minilm: Any, exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graft.model import GraftModel
    from graft.tasks import Classification

    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    model = GraftModel(minilm, Classification.spec_for(["business", "sport", "tech"]))
    monkeypatch.setenv("GRAFT_ENGINE", "eager")
    reference = model.predict_outputs(SENTENCES, batch_size=4)
    monkeypatch.setenv("GRAFT_ENGINE", "onnxruntime")
    got = model.predict_outputs(SENTENCES, batch_size=4)
    assert len(exports) == 1  # the forced engine did run
    assert np.array_equal(got.argmax(1), reference.argmax(1))
    assert equivalent(got, reference), float(np.abs(got - reference).max())


def test_a_text_network_without_switchable_attention_exports_as_it_is(
    exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    small = create("small_text", pretrained=False, max_length=32).eval()  # no normalisation
    tokens = _by_length(small, SENTENCES)
    engine = ENGINES.get("onnxruntime")(small, tokens[:2])
    for batch in (tokens[:2], tokens[2:4], tokens[4:]):
        got, reference = engine.run(batch), _eager(small, batch)
        assert equivalent(got, reference) and np.abs(reference).max() > 0
    assert len(exports) == 1


@pytest.mark.parametrize("winner", ["onnxruntime", "eager"])
def test_the_probe_runs_a_few_texts_and_the_kept_engine_only_the_rest(
    winner: str,
    minilm: Any,
    exports: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    # eager, eager again (a long-looking first run is timed warm), then onnxruntime
    seconds = iter([1.0, 1.0, 0.5 if winner == "onnxruntime" else 2.0])

    def timed(
        run: engines.Run, batch: torch.Tensor, *, retime: bool = True
    ) -> tuple[np.ndarray, float]:
        return run(batch), next(seconds)

    monkeypatch.setattr(engines, "_timed", timed)
    rows: list[int] = []
    hook = minilm.register_forward_hook(lambda _m, args, _o: rows.append(len(args[0])))
    first = _by_length(minilm, SENTENCES * 2)  # 12 texts; the probe takes 8
    try:
        reference = _eager(minilm, first)
        rows.clear()
        with choose_engine(minilm, first, input_kind="text", files=1000) as engine:
            assert engine.name == winner and rows == [engines.PROBE_ROWS] * 2
            got = engine.run(first)
    finally:
        hook.remove()
    # The probe's 8 texts run twice through eager (timing), every other text once.
    assert rows == ([8, 8] if winner == "onnxruntime" else [8, 8, 4])
    assert got.shape == (12, 384) and equivalent(got, reference)
    assert len(exports) == 1
