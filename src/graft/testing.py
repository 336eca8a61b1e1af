"""Tiny offline backbones for fast tests, in graft's own suite and in users' tests."""

from __future__ import annotations

import torch

from graft.backbones.base import Backbone

TINY_ARCH = "test_efficientnet"
_FALLBACK_ARCH = "resnet10t"


def tiny_backbone(seed: int = 0, image_size: int = 32) -> Backbone:
    """A randomly initialised, seeded tiny timm network with BatchNorm (no download).

    Args:
        seed: seeds the initialisation; the same seed gives the same weights.
        image_size: square input size recorded in its DataConfig.

    Shape:
        - Output: ``(batch, num_features)`` (256 features for ``test_efficientnet``).
    """
    import timm

    from graft.backbones import create

    arch = TINY_ARCH if timm.is_model(TINY_ARCH) else _FALLBACK_ARCH
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return create(f"timm:{arch}", pretrained=False, image_size=image_size)
    finally:
        # Tests that seed their own data must not see the global generator moved by this call.
        torch.random.set_rng_state(state)
