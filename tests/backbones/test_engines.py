"""Engines: each gives the eager features (within the stated tolerance) and the same top-1 on real
images (scikit-image photos, handwritten digits) with the bundled EfficientNet-Lite0; the store
records which engine computed an entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from graft.backbones import create, engines
from graft.backbones.base import Backbone
from graft.backbones.engines import ENGINES, TOLERANCE, choose_engine, equivalent
from graft.data import build_transform, load_image
from graft.measure.features import FeatureStore


@pytest.fixture(scope="module")
def lite0() -> Backbone:
    return create("efficientnet_lite0").eval()


def _photos(backbone: Backbone, digits_dir: Path, size: int) -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    transform = build_transform(backbone.data_config.with_image_size(size))
    photos = [Image.fromarray(a) for a in (data.chelsea(), data.coffee(), data.astronaut())]
    digits = [load_image(sorted((digits_dir / str(d)).iterdir())[0]) for d in (0, 3, 7)]
    return torch.stack([transform(im) for im in photos + digits])


@pytest.mark.parametrize("size", [224, 64])
def test_every_exact_engine_matches_eager_features_and_top1(
    lite0: Backbone, digits_dir: Path, size: int
) -> None:
    x = _photos(lite0, digits_dir, size)
    reference = ENGINES.get("eager")(lite0, x).run(x)
    head = lite0.source_head
    assert head is not None
    top1 = head(torch.from_numpy(reference)).argmax(1)
    for name in engines.available("image"):
        engine = ENGINES.get(name)(lite0, x)
        try:
            got = engine.run(x)
        finally:
            engine.close()
        assert equivalent(got, reference), (name, float(np.abs(got - reference).max()))
        assert torch.equal(head(torch.from_numpy(got)).argmax(1), top1), name
    assert lite0.model.conv_stem.weight.is_contiguous()  # channels_last was undone


def test_bf16_is_close_but_never_chosen_on_its_own(lite0: Backbone, digits_dir: Path) -> None:
    x = _photos(lite0, digits_dir, 64)
    reference = ENGINES.get("eager")(lite0, x).run(x)
    engine = ENGINES.get("bf16")(lite0, x)
    got = engine.run(x)
    engine.close()
    assert equivalent(got, reference, tolerance=0.2)
    assert "bf16" not in engines.PREFERENCE
    assert TOLERANCE <= 1e-4


def test_choice_is_an_equivalent_engine_and_the_store_records_it(
    lite0: Backbone, digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = _photos(lite0, digits_dir, 64)
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", 0.0)
    monkeypatch.setattr(engines, "PROBE_MIN_PASS_S", 0.0)
    with choose_engine(lite0, x, files=len(x)) as engine:
        assert engine.name in engines.available("image")
        assert equivalent(engine.run(x), ENGINES.get("eager")(lite0, x).run(x))
    with choose_engine(lite0, x, input_kind="other") as engine:  # a kind no engine lists
        assert engine.name == "eager"

    config = lite0.data_config.with_image_size(64)
    transform = build_transform(config)
    files = sorted(digits_dir.rglob("*.png"))[:20]

    def load(p: Path) -> torch.Tensor:
        return transform(load_image(p))

    store = FeatureStore(tmp_path / "store")
    fast = store.extract(lite0, files, load=load, transform_id="t64", progress=False).to_array()
    meta = json.loads(next((tmp_path / "store").glob("*/meta.json")).read_text())
    assert meta["engines"] and meta["engines"][0] in engines.available("image")
    monkeypatch.setenv("GRAFT_ENGINE", "eager")
    slow = FeatureStore(tmp_path / "eager").extract(
        lite0, files, load=load, transform_id="t64", progress=False
    )
    assert equivalent(fast, slow.to_array())
    meta = json.loads(next((tmp_path / "eager").glob("*/meta.json")).read_text())
    assert meta["engines"] == ["eager"]


def test_predict_through_every_engine_gives_eager_top1_and_probabilities(
    lite0: Backbone, digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from graft.model import GraftModel
    from graft.tasks import Classification

    data = pytest.importorskip("skimage.data")
    files = []
    for name in ("chelsea", "coffee", "astronaut"):
        files.append(tmp_path / f"{name}.png")
        Image.fromarray(getattr(data, name)()).save(files[-1])
    files += [sorted((digits_dir / str(d)).iterdir())[0] for d in (0, 3, 7)]
    torch.manual_seed(0)
    model = GraftModel(lite0, Classification.spec_for([f"c{i}" for i in range(5)]))
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", 0.0)
    monkeypatch.setattr(engines, "PROBE_MIN_PASS_S", 0.0)
    monkeypatch.setenv("GRAFT_ENGINE", "eager")
    reference = model.predict_outputs(files, batch_size=4)
    for name in [*engines.available("image"), ""]:  # "": the automatic choice
        monkeypatch.setenv("GRAFT_ENGINE", name)
        got = model.predict_outputs(files, batch_size=4)
        assert np.array_equal(got.argmax(1), reference.argmax(1)), name
        assert equivalent(got, reference), (name, float(np.abs(got - reference).max()))
    assert lite0.model.conv_stem.weight.is_contiguous()


@pytest.mark.parametrize("name", ["channels_last", "fused", "onnxruntime"])
def test_an_engine_used_under_inference_mode_leaves_a_model_that_can_train(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GraftModel.predict runs under torch.inference_mode: weights the engine re-lays out there
    # must stay ordinary tensors (the demo's compare crashed setting requires_grad on them).
    if name not in engines.available():
        pytest.skip(f"{name} is not available here")
    backbone = create("timm:test_efficientnet", pretrained=False, image_size=32)
    backbone.eval()
    monkeypatch.setenv("GRAFT_ENGINE", name)
    with torch.inference_mode():
        batch = torch.randn(4, 3, 32, 32)
        with choose_engine(backbone, batch, files=4) as engine:
            assert engine.name == name
            engine.run(batch)
    assert not any(p.is_inference() for p in backbone.parameters())
    for p in backbone.parameters():
        p.requires_grad_(True)
    backbone.train()
    backbone(torch.randn(2, 3, 32, 32)).sum().backward()


def test_the_kept_engine_does_not_compute_the_probed_batch_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", float("inf"))  # no export
    monkeypatch.setattr(engines, "RETIME_BELOW_S", 0.0)  # one timed run each
    monkeypatch.setattr(engines, "PROBE_MIN_PASS_S", 0.0)  # a short pass is still probed
    backbone = _tiny_backbone()
    calls: list[int] = []
    backbone.register_forward_hook(lambda *_: calls.append(1))
    first, second = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    with choose_engine(backbone, first, files=1000) as engine:
        probed = len(calls)
        # eager twice (a long-looking first run is timed again), then fused and channels_last
        # once each (fused runs a copy of the module, hooks included)
        assert probed == 4
        got = engine.run(first)
        assert len(calls) == probed  # the probe's output, not a third pass
        engine.run(second)
        assert len(calls) == probed + 1
        assert equivalent(engine.run(first), got) and len(calls) == probed + 2  # once only


def test_a_short_probe_run_is_timed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def run(x: torch.Tensor) -> np.ndarray:
        calls.append(len(x))
        return x.numpy()

    batch = torch.zeros(3, 2)
    out, seconds = engines._timed(run, batch)
    assert calls == [3, 3] and seconds >= 0 and out.shape == (3, 2)  # first run: one-off costs
    monkeypatch.setattr(engines, "RETIME_BELOW_S", 0.0)
    calls.clear()
    engines._timed(run, batch)
    assert calls == [3]  # a long enough run is its own measure


def test_cheap_rows_are_probed_on_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """On small inputs the engines' speeds depend on the batch size: when eager would run the
    whole first batch within WHOLE_BATCH_PROBE_S, every engine is timed on all of it."""
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", float("inf"))  # no export
    sizes: list[int] = []
    seconds = {"cheap": 0.001, "dear": 10.0}

    for kind, expected in (("cheap", 16), ("dear", engines.PROBE_ROWS)):
        sizes.clear()

        def timed(
            run: engines.Run, batch: torch.Tensor, kind: str = kind, *, retime: bool = True
        ) -> tuple[np.ndarray, float]:
            sizes.append(len(batch))
            return run(batch), seconds[kind]

        monkeypatch.setattr(engines, "_timed", timed)
        first = torch.randn(16, 3, 32, 32)
        with choose_engine(_tiny_backbone(), first, files=1000) as engine:
            assert engine.run(first).shape[0] == 16
        assert sizes[-1] == expected, (kind, sizes)


@pytest.mark.parametrize(("warm_s", "probed"), [(1e-4, False), (10.0, True)])
def test_a_long_looking_first_run_is_timed_again_before_engines_are_built(
    monkeypatch: pytest.MonkeyPatch, warm_s: float, probed: bool
) -> None:
    """A process's first forward is slow (one-off costs): a pass that looks long on it is timed
    again, and only a pass that still looks long gets engines built (the first ranking call had
    made an ONNX export for 255 small digits this way)."""
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", float("inf"))  # no export
    built: list[str] = []
    real_get = engines.ENGINES.get
    monkeypatch.setattr(engines.ENGINES, "get", lambda name: built.append(name) or real_get(name))
    timings = iter([1.0, warm_s, warm_s, warm_s, warm_s])

    def timed(
        run: engines.Run, batch: torch.Tensor, *, retime: bool = True
    ) -> tuple[np.ndarray, float]:
        return run(batch), next(timings)

    monkeypatch.setattr(engines, "_timed", timed)
    first = torch.randn(4, 3, 32, 32)
    with choose_engine(_tiny_backbone(), first, files=16) as engine:  # 1 s per probe: 4 s
        engine.run(first)
    assert bool(built) is probed, built


def test_a_short_pass_runs_eager_without_probing_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager's probe says the pass would end within PROBE_MIN_PASS_S: no other engine is
    built or timed before the pass starts, and the probe's rows are not computed again."""
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    built: list[str] = []
    real_get = engines.ENGINES.get
    monkeypatch.setattr(engines.ENGINES, "get", lambda name: built.append(name) or real_get(name))
    backbone = _tiny_backbone()
    calls: list[int] = []
    backbone.register_forward_hook(lambda _m, args, _o: calls.append(len(args[0])))
    first = torch.randn(4, 3, 32, 32)
    with choose_engine(backbone, first, files=300) as engine:  # 300 tiny images: milliseconds
        assert engine.name == "eager" and not built
        engine.run(first)
    assert calls == [4]  # the probe, once (eager runs either way); the pass reused its output


def _race(
    monkeypatch: pytest.MonkeyPatch, challenger_s: float, *, files: int = 1000, rows: int = 4
) -> tuple[list[str], list[str], Backbone]:
    """A short pass over three batches of ``rows`` images; eager's probe is timed at 1 s and the
    challenger's batch at ``challenger_s``. Returns the engines built, the engine's name after
    each batch, and the backbone (checked after the pass)."""
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    built: list[str] = []
    real_get = engines.ENGINES.get
    monkeypatch.setattr(engines.ENGINES, "get", lambda name: built.append(name) or real_get(name))
    timings = iter([1.0, challenger_s])

    def timed(
        run: engines.Run, batch: torch.Tensor, *, retime: bool = True
    ) -> tuple[np.ndarray, float]:
        return run(batch), next(timings)

    monkeypatch.setattr(engines, "_timed", timed)
    monkeypatch.setattr(engines, "PROBE_MIN_PASS_S", float("inf"))  # every pass is short
    backbone = _tiny_backbone()
    torch.manual_seed(1)
    batches = [torch.randn(rows, 3, 32, 32) for _ in range(3)]
    reference = [ENGINES.get("eager")(backbone, b).run(b) for b in batches]
    built.clear()
    names = []
    with choose_engine(backbone, batches[0], files=files) as engine:
        for batch, expected in zip(batches, reference, strict=True):
            assert equivalent(engine.run(batch), expected)
            names.append(engine.name)
    assert backbone.model.conv_stem.weight.is_contiguous()  # the module is restored
    return built, names, backbone


def test_a_short_image_pass_races_channels_last_on_its_second_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A short pass of several batches tries the raced engine on its second batch (a batch of
    the pass, not a probe): kept when faster per row than eager was on the first, closed when
    slower; either way every batch gives eager's features."""
    assert engines.RACED["image"] == "fused"
    built, names, _ = _race(monkeypatch, challenger_s=0.1)
    assert built == [engines.RACED["image"]]
    assert names == ["eager", "fused", "fused"]
    built, names, _ = _race(monkeypatch, challenger_s=10.0)
    assert built == [engines.RACED["image"]] and names == ["eager", "eager", "eager"]


@pytest.mark.parametrize("challenger_s", [0.1, 10.0])
def test_within_remembered_races_an_architecture_races_once(
    monkeypatch: pytest.MonkeyPatch, challenger_s: float
) -> None:
    """graft rank's candidates and the advisor's sizes: when channels-last won, the second
    short pass of the same architecture starts with it from its first batch, no race; when it
    lost on time, the next pass races again (one batch's timing is noisy). Outside the scope
    every pass races."""
    winner = "fused" if challenger_s < 1 else "eager"
    with engines.remembered_races():
        built, names, _ = _race(monkeypatch, challenger_s=challenger_s)
        assert built == [engines.RACED["image"]] and names[-1] == winner
        built, names, _ = _race(monkeypatch, challenger_s=challenger_s)
        assert built == [engines.RACED["image"]]
        assert names == ([winner] * 3 if winner != "eager" else ["eager"] * 3)
    built, names, _ = _race(monkeypatch, challenger_s=challenger_s)
    assert built == [engines.RACED["image"]] and names[0] == "eager"


def test_a_pass_of_two_batches_or_fewer_is_not_raced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing would run after the race batch: eager throughout, nothing built."""
    built, names, _ = _race(monkeypatch, challenger_s=0.1, files=8, rows=4)
    assert built == [] and names == ["eager"] * 3


def test_a_challenger_that_differs_from_eager_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """The challenger is checked against eager on the probe's rows before its batch is used."""
    real = engines.ENGINES.get("fused")

    def wrong(module: torch.nn.Module, example: torch.Tensor) -> engines.Engine:
        engine = real(module, example)
        return engines.Engine(engine.name, lambda x: engine.run(x) + 1.0, engine.close)

    monkeypatch.setitem(engines.ENGINES._entries, "fused", wrong)
    built, names, _ = _race(monkeypatch, challenger_s=0.1)
    assert built == [engines.RACED["image"]] and names == ["eager", "eager", "eager"]
    with engines.remembered_races():  # a difference is no noise: not tried again in the scope
        _race(monkeypatch, challenger_s=0.1)
        built, names, _ = _race(monkeypatch, challenger_s=0.1)
        assert built == [] and names == ["eager", "eager", "eager"]


def test_the_export_is_made_only_for_a_long_pass_and_a_cached_one_is_always_tried(
    exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below EXPORT_MIN_PASS_S (eager's estimate) no export is made, but an export already
    in the cache is probed like any engine (a session build costs little)."""
    pytest.importorskip("onnxruntime")
    monkeypatch.delenv("GRAFT_ENGINE", raising=False)
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(engines, "PROBE_MIN_PASS_S", 0.0)  # every pass is probed
    built: list[str] = []
    real_get = engines.ENGINES.get
    monkeypatch.setattr(engines.ENGINES, "get", lambda name: built.append(name) or real_get(name))
    backbone, first = _tiny_backbone(), torch.randn(4, 3, 32, 32)
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", 10**6.0)  # the pass is too short
    with choose_engine(backbone, first, files=300):
        pass
    assert "onnxruntime" not in built and not exports
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", 0.0)  # long enough: exported
    with choose_engine(backbone, first, files=300):
        pass
    assert built.count("onnxruntime") == 1 and len(exports) == 1
    monkeypatch.setitem(engines.EXPORT_MIN_PASS_S, "image", 10**6.0)
    with choose_engine(backbone, first, files=300):  # short again, but now cached: tried
        pass
    assert built.count("onnxruntime") == 2 and len(exports) == 1


# ---------------------------------------------------------------- the exported-engine cache


def _tiny_backbone() -> Backbone:
    torch.manual_seed(0)
    return create("timm:test_efficientnet", pretrained=False, image_size=32).eval()


def test_the_onnx_export_is_cached_checked_and_rebuilt_when_damaged(
    exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    backbone, x = _tiny_backbone(), torch.randn(3, 3, 32, 32)
    first = ENGINES.get("onnxruntime")(backbone, x).run(x)
    (model_file,) = (tmp_path / engines.ENGINE_CACHE).glob("*.onnx")
    assert len(exports) == 1 and model_file.with_suffix(".json").is_file()
    again = ENGINES.get("onnxruntime")(backbone, x).run(x)
    assert len(exports) == 1 and np.array_equal(again, first)  # read back, not exported

    blob = bytearray(model_file.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte, e.g. in a weight: still a loadable model
    model_file.write_bytes(bytes(blob))
    rebuilt = ENGINES.get("onnxruntime")(backbone, x).run(x)
    assert len(exports) == 2 and np.array_equal(rebuilt, first)
    assert engines._read_checked(model_file, model_file.with_suffix(".json")) is not None

    model_file.with_suffix(".json").unlink()  # a crash between the two writes
    ENGINES.get("onnxruntime")(backbone, x).run(x)
    assert len(exports) == 3

    model_file.write_bytes(b"not onnx")  # record rewritten to match: ONNX Runtime refuses it
    record = json.loads(model_file.with_suffix(".json").read_text())
    record["sha256"] = __import__("hashlib").sha256(b"not onnx").hexdigest()
    model_file.with_suffix(".json").write_text(json.dumps(record))
    assert np.array_equal(ENGINES.get("onnxruntime")(backbone, x).run(x), first)
    assert len(exports) == 4


def test_the_engine_cache_key_follows_weights_and_input_size(
    exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    backbone = _tiny_backbone()
    ENGINES.get("onnxruntime")(backbone, torch.randn(2, 3, 32, 32))
    ENGINES.get("onnxruntime")(backbone, torch.randn(2, 3, 64, 64))  # another input size
    with torch.no_grad():
        backbone.model.conv_stem.weight.mul_(0.5)  # other weights (a fine-tuned backbone)
    x = torch.randn(2, 3, 32, 32)
    changed = ENGINES.get("onnxruntime")(backbone, x).run(x)
    assert len(exports) == 3 and len(list((tmp_path / "engines").glob("*.onnx"))) == 3
    assert equivalent(changed, ENGINES.get("eager")(backbone, x).run(x))


def test_an_unwritable_engine_cache_still_runs(
    exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(blocker))  # engines/ cannot be made under a file
    backbone, x = _tiny_backbone(), torch.randn(2, 3, 32, 32)
    got = ENGINES.get("onnxruntime")(backbone, x).run(x)
    assert len(exports) == 1 and equivalent(got, ENGINES.get("eager")(backbone, x).run(x))


def test_the_engine_cache_keeps_the_most_recently_used_and_only_deletes_its_own(
    exports: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(engines, "ENGINES_KEPT", 2)
    folder = tmp_path / engines.ENGINE_CACHE
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's")
    backbone = _tiny_backbone()
    for size in (32, 64, 96):
        ENGINES.get("onnxruntime")(backbone, torch.randn(1, 3, size, size))
    assert len(exports) == 3 and len(list(folder.glob("*.onnx"))) == 2
    assert len(list(folder.glob("*.json"))) == 2 and (folder / "notes.txt").is_file()
    ENGINES.get("onnxruntime")(backbone, torch.randn(1, 3, 64, 64))  # still there: no export
    assert len(exports) == 3


def test_fused_folds_batchnorm_into_a_copy_and_leaves_the_module_as_it_was() -> None:
    backbone = _tiny_backbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    x = torch.randn(6, 3, 32, 32)
    reference = ENGINES.get("eager")(backbone, x).run(x)
    engine = ENGINES.get("fused")(backbone, x)
    assert equivalent(engine.run(x), reference)
    after = backbone.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert engines._conv_bn_pairs(backbone)  # the module keeps its BatchNorms
    with pytest.raises(RuntimeError, match="nothing to fold"):
        ENGINES.get("fused")(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), x)


class _NormFirst(torch.nn.Module):
    """Registers a convolution before a BatchNorm but normalises first: folding by registration
    order gives other numbers, which the equivalence check must refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(3)
        with torch.no_grad():
            self.norm.running_mean.uniform_(-1, 1)
            self.norm.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(x)).mean(dim=(2, 3))


def test_a_module_whose_forward_is_not_its_registration_order_is_not_fused() -> None:
    module = _NormFirst().eval()
    x = torch.randn(4, 3, 8, 8)
    expected = ENGINES.get("eager")(module, x).run(x)
    assert not equivalent(ENGINES.get("fused")(module, x).run(x), expected)
    assert engines._checked("fused", module, x, expected) is None
