"""Parameter helpers shared by the regularizers and the retention report.

``model`` is any module whose ``.backbone`` is a graft :class:`~graft.backbones.base.Backbone`
(a ``GraftModel``; pass ``accelerator.unwrap_model(...)`` rather than a DDP wrapper).
Parameters of the backbone's original classifier (``source_head``) are not "backbone"
parameters here: the target task never trains them. Every other parameter of ``model`` outside
the backbone is a "head" parameter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from graft.backbones.base import Backbone
from graft.errors import ConfigError


def backbone_of(model: nn.Module, backbone: Backbone | None = None) -> Backbone:
    """``backbone`` or ``model.backbone``, with an actionable error when neither exists."""
    found = backbone if backbone is not None else getattr(model, "backbone", None)
    if not isinstance(found, Backbone):
        raise ConfigError(
            f"{type(model).__name__} has no graft Backbone at .backbone; pass backbone=..."
        )
    return found


def backbone_params(backbone: Backbone) -> Iterator[tuple[str, nn.Parameter]]:
    """The backbone's parameters without its source classifier, in a stable order."""
    head = backbone.source_head
    skip = {id(p) for p in head.parameters()} if head is not None else set()
    for name, p in backbone.named_parameters():
        if id(p) not in skip:
            yield name, p


def head_params(model: nn.Module, backbone: Backbone) -> Iterator[tuple[str, nn.Parameter]]:
    """Parameters of ``model`` outside the backbone (the new heads)."""
    inside = {id(p) for p in backbone.parameters()}
    for name, p in model.named_parameters():
        if id(p) not in inside:
            yield name, p


def snapshot(backbone: Backbone, device: torch.device | str | None) -> dict[str, torch.Tensor]:
    """Detached copies of the backbone parameters (the anchor θ*), on ``device``.

    ``device=None`` keeps each copy where its parameter lives (Accelerate's device in a run).
    """
    return {n: p.detach().to(device, copy=True) for n, p in backbone_params(backbone)}


def copy_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module``'s state dict, where each tensor lives."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def device_of(module: nn.Module) -> torch.device | None:
    """Where ``module``'s parameters live (None for a module without parameters)."""
    p = next(module.parameters(), None)
    return p.device if p is not None else None


def first_item(batch: Any) -> torch.Tensor:
    """The inputs of a loader batch: the tensor itself or the first item of a tuple/list."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise ConfigError(
        f"reference batches must be a tensor or (inputs, ...) tuples, got {type(batch).__name__}"
    )


__all__ = [
    "backbone_of",
    "backbone_params",
    "copy_state",
    "device_of",
    "first_item",
    "head_params",
    "snapshot",
]
