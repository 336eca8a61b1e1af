"""The gap to the bundled reference sample grades real data: other photographs near, digits far.

Bundled efficientnet_lite0 at 112 px (the size the thresholds were calibrated at), 80-90 images per
side. Measured once with 120 per side: other crops 0.00 [0.00, 0.08], Fashion-MNIST 0.97 [0.73, 1.17], digits
1.46 [1.27, 1.61].
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graft.data.transforms import build_transform
from graft.measure.gap import domain_gap
from graft.measure.source import reference_crops, reference_features

pytest.importorskip("skimage")
N = 80


@pytest.fixture(scope="module")
def lite0() -> object:
    from graft.backbones import create

    return create("efficientnet_lite0", image_size=112).eval()


def features(backbone: object, images: list[object]) -> np.ndarray:
    tf = build_transform(backbone.data_config, train=False)  # type: ignore[attr-defined]
    with torch.inference_mode():
        return backbone(torch.stack([tf(im) for im in images])).numpy()  # type: ignore[operator]


def gray_images(arrays: np.ndarray) -> list[object]:
    from PIL import Image

    scale = 255.0 / max(float(arrays.max()), 1.0)
    return [Image.fromarray((a * scale).astype(np.uint8)).convert("RGB") for a in arrays]


def test_other_photos_near_digits_and_fashion_far(lite0: object) -> None:
    from sklearn.datasets import load_digits

    ref, note = reference_features(lite0)  # type: ignore[arg-type]
    assert ref is not None and len(ref) == 360 and "reference sample" in note
    photos = features(lite0, reference_crops(per_photo=6, seed=1))  # crops the sample lacks
    digits = features(lite0, gray_images(load_digits().images[:N]))
    gaps = {"photos": domain_gap(ref, photos), "digits": domain_gap(ref, digits)}
    try:
        from graft.data.fashion_mnist import read_fashion_mnist

        gaps["fashion"] = domain_gap(ref, features(lite0, gray_images(read_fashion_mnist()[0][:N])))
    except Exception:  # the Debian package is optional; digits still make the far case
        pass
    near = gaps.pop("photos")
    assert near.level == "near" and near.proxy_a_low <= near.proxy_a_distance <= near.proxy_a_high
    assert gaps["digits"].level == "far"
    for far in gaps.values():
        assert far.level != "near"
        assert far.proxy_a_distance > near.proxy_a_distance + 0.6
        assert far.proxy_a_low > near.proxy_a_high  # the intervals do not overlap
