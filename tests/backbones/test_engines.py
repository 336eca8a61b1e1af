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
    monkeypatch.setattr(engines, "ONNX_MIN_FILES", 1)
    with choose_engine(lite0, x, files=len(x)) as engine:
        assert engine.name in engines.available("image")
        assert equivalent(engine.run(x), ENGINES.get("eager")(lite0, x).run(x))
    with choose_engine(lite0, x, input_kind="text") as engine:
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
    monkeypatch.setattr(engines, "PROBE_MIN_FILES", 1)
    monkeypatch.setattr(engines, "ONNX_MIN_FILES", 1)
    monkeypatch.setenv("GRAFT_ENGINE", "eager")
    reference = model.predict_outputs(files, batch_size=4)
    for name in [*engines.available("image"), ""]:  # "": the automatic choice
        monkeypatch.setenv("GRAFT_ENGINE", name)
        got = model.predict_outputs(files, batch_size=4)
        assert np.array_equal(got.argmax(1), reference.argmax(1)), name
        assert equivalent(got, reference), (name, float(np.abs(got - reference).max()))
    assert lite0.model.conv_stem.weight.is_contiguous()


@pytest.mark.parametrize("name", ["channels_last", "onnxruntime"])
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
