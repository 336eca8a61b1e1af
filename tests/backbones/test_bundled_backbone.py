"""The bundled EfficientNet-Lite0: real ImageNet weights, its measured preprocessing, its spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from graft.backbones import BUNDLED, Backbone, DataConfig, create, from_spec, list_bundled
from graft.backbones.weights import file_sha256

TABBY_TO_EGYPTIAN_CAT = set(range(281, 286))
ESPRESSO_CUP_MUG = {967, 968, 504}


@pytest.fixture(scope="module")
def lite0() -> Backbone:
    return create("efficientnet_lite0")


def _preprocess(image: np.ndarray, cfg: DataConfig) -> torch.Tensor:
    """Resize the short side to size / crop_pct, center-crop, normalise (timm's eval pipeline)."""
    size = cfg.image_size
    im = Image.fromarray(image)
    scale = int(size / cfg.crop_pct)
    w, h = im.size
    nw, nh = (scale, int(h * scale / w)) if w < h else (int(w * scale / h), scale)
    im = im.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)
    mean = torch.tensor(cfg.mean)[:, None, None]
    std = torch.tensor(cfg.std)[:, None, None]
    return ((x - mean) / std)[None]


def test_imagenet_sanity_top1(lite0: Backbone) -> None:
    from skimage import data

    batch = torch.cat([_preprocess(a, lite0.data_config) for a in (data.chelsea(), data.coffee())])
    with torch.no_grad():
        probs = lite0.source_logits(batch).softmax(-1)
    cat, coffee = probs.argmax(-1).tolist()
    assert cat in TABBY_TO_EGYPTIAN_CAT
    assert coffee in ESPRESSO_CUP_MUG
    # Confident, not lucky: most of the mass on the right family of classes.
    assert probs[0, sorted(TABBY_TO_EGYPTIAN_CAT)].sum() > 0.8
    assert probs[1, sorted(ESPRESSO_CUP_MUG)].sum() > 0.8


def test_data_config_is_the_measured_tf_lite_preprocessing(lite0: Backbone) -> None:
    assert lite0.data_config == DataConfig(
        input_size=(3, 224, 224),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        crop_pct=0.875,
    )
    assert create("efficientnet_lite0", image_size=128).data_config.input_size == (3, 128, 128)


def test_features_shape_and_groups(lite0: Backbone) -> None:
    with torch.no_grad():
        feats = lite0(torch.randn(2, 3, 96, 96))
    assert feats.shape == (2, 1280) and lite0.num_features == 1280
    assert lite0.group_names == ["stem", *[f"blocks.{i}" for i in range(7)], "final"]
    assert lite0.source_head is not None and not lite0.training


def test_spec_records_the_weights_file(lite0: Backbone) -> None:
    spec = lite0.spec
    assert (spec.source, spec.arch, spec.pretrained) == ("bundled", "efficientnet_lite0", True)
    assert spec.kwargs == {"bn_eps": 1e-3}
    path = BUNDLED.get("efficientnet_lite0").weights_file()
    assert spec.weights_sha256 == file_sha256(path) and len(spec.weights_sha256) == 64


def test_from_spec_rebuilds(lite0: Backbone) -> None:
    same = from_spec(lite0.spec, load_weights=True)
    assert same.identity() == lite0.identity()
    bare = from_spec(lite0.spec, load_weights=False)
    assert bare.identity() != lite0.identity()
    assert bare.group_names == lite0.group_names and bare.data_config == lite0.data_config
    bare.load_state_dict(lite0.state_dict())
    assert bare.identity() == lite0.identity()


def test_list_bundled_matches_the_built_network(lite0: Backbone) -> None:
    (entry,) = [e for e in list_bundled() if e["name"] == "efficientnet_lite0"]
    assert set(entry) == {"name", "description", "params", "feature_dim", "source", "license"}
    assert entry["params"] == sum(p.numel() for p in lite0.model.parameters())
    assert entry["feature_dim"] == lite0.num_features


@pytest.mark.parametrize("name", BUNDLED.names())
def test_every_bundled_entry_builds_offline(name: str) -> None:
    entry = BUNDLED.get(name)
    bb = create(name, image_size=64)
    assert bb.spec.weights_sha256 and bb.source_head is not None
    assert bb.num_features == entry.num_features
    with torch.no_grad():
        assert bb(torch.zeros(1, 3, 64, 64)).shape == (1, entry.num_features)


@pytest.mark.parametrize(
    ("name", "size"), [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)]
)
def test_larger_lites_see_the_egyptian_cat_and_the_espresso(name: str, size: int) -> None:
    """Lite1/Lite2 at their native sizes: chelsea is class 285 (Egyptian cat), coffee 967."""
    from skimage import data

    bb = create(name)
    assert bb.data_config == DataConfig(
        input_size=(3, size, size),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        crop_pct=0.875,
    )
    assert (bb.spec.arch, bb.spec.kwargs) == (name, {"bn_eps": 1e-3})
    batch = torch.cat([_preprocess(a, bb.data_config) for a in (data.chelsea(), data.coffee())])
    with torch.no_grad():
        probs = bb.source_logits(batch).softmax(-1)
    assert probs.argmax(-1).tolist() == [285, 967]
    assert probs[0, sorted(TABBY_TO_EGYPTIAN_CAT)].sum() > 0.7
    assert probs[1, sorted(ESPRESSO_CUP_MUG)].sum() > 0.5
    (entry,) = [e for e in list_bundled() if e["name"] == name]
    assert entry["params"] == sum(p.numel() for p in bb.model.parameters())


def test_graft_models_lists_the_three_lites() -> None:
    from graft.backbones import models_text

    text = models_text()
    for name, size in (
        ("efficientnet_lite0", 224),
        ("efficientnet_lite1", 240),
        ("efficientnet_lite2", 260),
    ):
        (line,) = [x for x in text.splitlines() if x.strip().startswith(name)]
        assert f"{size} px native" in line
