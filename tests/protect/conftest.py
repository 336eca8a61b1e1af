"""Tiny offline backbones for the regularizer tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graft.backbones.base import Backbone, BackboneSpec, DataConfig


class Wrapped(nn.Module):
    """A backbone and a new head, shaped like a GraftModel."""

    def __init__(self, backbone: Backbone, outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def resnet_backbone(seed: int = 0) -> Backbone:
    import timm

    torch.manual_seed(seed)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    spec = BackboneSpec(name="tiny", arch="resnet10t", source="timm", pretrained=False)
    return Backbone(model, spec, DataConfig(input_size=(3, 32, 32)), groups=[])


class TinyNet(nn.Module):
    """A timm-shaped two-layer network: ``fc(act(body(x)))``, small enough for exact formulas."""

    def __init__(self, d_in: int = 3, width: int = 4, classes: int = 3, act: bool = True):
        super().__init__()
        self.num_features = width
        self.body = nn.Linear(d_in, width)
        self.act = nn.ReLU() if act else nn.Identity()
        self.fc = nn.Linear(width, classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc


def tiny_backbone(**kwargs: int | bool) -> Backbone:
    spec = BackboneSpec(name="tinynet", arch="tinynet", source="local", pretrained=False)
    cfg = DataConfig(input_size=(1, 8, 8), mean=(0.5,), std=(0.5,))
    net = TinyNet(**kwargs)  # type: ignore[arg-type]
    # Vectors, not images: the width is the network's own (no image to measure it on).
    return Backbone(net, spec, cfg, groups=[], num_features=net.num_features)


@pytest.fixture
def resnet_model() -> Wrapped:
    return Wrapped(resnet_backbone(), outputs=5).eval()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def make_tiny() -> type[Wrapped] | object:
    """A factory: ``make_tiny(outputs=2, **TinyNet options) -> Wrapped`` (eval mode)."""

    def make(outputs: int = 2, **kwargs: int | bool) -> Wrapped:
        return Wrapped(tiny_backbone(**kwargs), outputs=outputs).eval()

    return make
