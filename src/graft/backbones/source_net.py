"""A network made of a root body and a kept source classifier: a saved model used as a source.

The saved-model source (``graft:``, defined in :mod:`graft.model_source`, above this layer)
takes a saved graft model apart: its backbone becomes the body and its head the source
classifier, the "original classifier" that LEEP, LwF, EWC's sampled Fisher and the retention
report use. This module holds the torch-only part: the network and its assembly into a
:class:`Backbone`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graft.backbones.base import Backbone, BackboneSpec, DataConfig, LayerGroup, measured_width
from graft.backbones.groups import layer_groups
from graft.errors import BackboneError, ConfigError


class SourceNet(nn.Module):
    """A timm-like network: a root body without its classifier, and a source classifier.

    Args:
        body: the root architecture (timm model or small CNN) with its own classifier removed.
        classifier: the saved model's head, or ``nn.Identity()`` when it is not kept.
        pretrained_cfg: preprocessing of the saved model (timm keys), with ``classifier``.

    Shape:
        - Input: ``(batch, channels, height, width)``.
        - Output of ``forward_head(x, pre_logits=True)``: ``(batch, num_features)``.
    """

    def __init__(self, body: nn.Module, classifier: nn.Module, pretrained_cfg: dict[str, Any]):
        super().__init__()
        self.body = body
        self.classifier = classifier
        self.num_features = measured_width(body, tuple(pretrained_cfg["input_size"]))
        self.pretrained_cfg = {**pretrained_cfg, "classifier": "classifier"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.forward_features(x)  # type: ignore[operator]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = self.body.forward_head(x, pre_logits=True)  # type: ignore[operator]
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int = 0, *args: Any, **kwargs: Any) -> None:
        """Drop the source classifier (only ``0`` is supported: a chain keeps the latest head)."""
        if num_classes != 0:
            raise BackboneError("a graft source network can only drop its classifier")
        self.classifier = nn.Identity()


def body_of(model: nn.Module) -> nn.Module:
    """The root network without any classifier (unwraps an earlier source in a chain)."""
    body = model.body if isinstance(model, SourceNet) else model
    reset = getattr(body, "reset_classifier", None)
    if callable(reset):
        reset(0)
    return body


def assemble_source_net(
    body: nn.Module, classifier: nn.Module, spec: BackboneSpec, image_size: int | None
) -> Backbone:
    """The Backbone of a SourceNet; preprocessing from ``spec.kwargs["data_config"]``."""
    data_config = DataConfig.from_dict(spec.kwargs["data_config"])
    try:
        data_config = data_config.with_image_size(image_size)
    except ValueError as e:
        raise ConfigError(f"image_size (--image-size): {e}") from e
    net = SourceNet(body, classifier, _timm_cfg(data_config))
    groups = [
        LayerGroup(g.name, tuple(f"body.{n}" for n in g.param_names)) for g in layer_groups(body)
    ]
    return Backbone(net, spec, data_config, groups).eval()


def _timm_cfg(config: DataConfig) -> dict[str, Any]:
    return {
        "input_size": config.input_size,
        "mean": config.mean,
        "std": config.std,
        "interpolation": config.interpolation,
        "crop_pct": config.crop_pct,
    }
