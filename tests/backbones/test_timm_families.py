"""Contract: a tiny random member of each major timm family fits, saves, loads and predicts.

The head is sized from the backbone's measured output: MobileNetV3/V4, GhostNet, LCNet and
HGNetV2 put a head convolution after pooling, so their features are wider than timm's
``num_features`` says (MobileNetV3-small-0.5: 1024, not 288).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graft
from graft.backbones import create

QUIET = {"log": lambda s: None, "progress": False, "retention": False}

FAMILIES = [
    ("test_resnet", 32),
    ("test_efficientnet", 32),
    ("mobilenetv3_small_050", 32),
    ("test_convnext", 32),
    ("regnetx_002", 32),
    ("test_vit", 32),
    ("ghostnet_050", 32),
    ("lcnet_050", 32),
    ("mobilenetv4_conv_small", 32),
    ("test_byobnet", 32),
    ("test_nfnet", 32),
]


@pytest.mark.parametrize(("arch", "size"), FAMILIES, ids=[a for a, _ in FAMILIES])
def test_each_family_fits_saves_loads_and_predicts(
    arch: str, size: int, digits_dir: Path, tmp_path: Path
) -> None:
    model = graft.fit(
        digits_dir, backbone=f"timm:{arch}", pretrained=False, image_size=size,
        strategy="two_stage", epochs=1, batch_size=32, cache_dir=str(tmp_path / "c"), **QUIET,
    )  # fmt: skip
    images = sorted(str(p) for p in digits_dir.rglob("*.png"))[:4]
    before, _ = model.predict_distribution(images)
    folder = model.save(tmp_path / "m")
    again = graft.load(folder)
    after, _ = again.predict_distribution(images)
    assert after.shape == (4, 10)
    np.testing.assert_allclose(np.asarray(after), np.asarray(before), rtol=1e-4, atol=1e-5)


def test_the_head_is_sized_from_the_measured_output_not_num_features() -> None:
    backbone = create("timm:mobilenetv3_small_050", pretrained=False, image_size=32)
    assert int(backbone.model.num_features) == 288, "timm's metadata says 288"
    assert backbone.num_features == 1024, "the network really outputs 1024"


def test_a_size_the_network_refuses_is_a_config_error_naming_it() -> None:
    from graft.errors import ConfigError

    with pytest.raises(ConfigError, match="does not accept input size"):
        create("timm:test_vit", pretrained=False, image_size=30)
