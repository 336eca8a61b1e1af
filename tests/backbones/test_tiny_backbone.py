"""graft.testing.tiny_backbone: seeded, offline, small, with BatchNorm."""

from __future__ import annotations

import torch
from torch import nn

from graft.testing import tiny_backbone


def test_seeded_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = tiny_backbone(seed=0)
    assert torch.equal(torch.rand(1), expected)
    assert a.identity() == tiny_backbone(seed=0).identity()
    assert a.identity() != tiny_backbone(seed=1).identity()


def test_shape_batchnorm_and_config() -> None:
    bb = tiny_backbone(image_size=32)
    assert bb.data_config.input_size == (3, 32, 32)
    assert bb.spec.pretrained is False
    assert any(isinstance(m, nn.BatchNorm2d) for m in bb.modules())
    with torch.no_grad():
        assert bb(torch.randn(2, 3, 32, 32)).shape == (2, bb.num_features)
    assert sum(p.numel() for p in bb.parameters()) < 1_000_000
