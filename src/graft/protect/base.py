"""The regularizer contract: keep what the pretrained backbone knew while fine-tuning.

A regularizer is configured with keyword strengths, then used in two calls::

    reg = create_regularizer("l2sp", alpha=0.1, beta=0.01)
    reg.setup(model, reference_loader=loader, device=device)  # once, before any update
    ...
    penalty, metrics = reg.penalty(model, x, outputs, features=feats)  # every step
    loss = task_loss + penalty

``model`` is any module whose ``.backbone`` is a graft :class:`~graft.backbones.base.Backbone`
(a ``GraftModel``; pass ``accelerator.unwrap_model(...)`` rather than a DDP wrapper).
Parameters of the backbone's original classifier (``source_head``) are not "backbone"
parameters here: the target task never trains them. Every other parameter of ``model`` outside
the backbone is a "head" parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn

from graft._registry import Registry
from graft.backbones.base import Backbone
from graft.errors import ConfigError


@dataclass(eq=False, kw_only=True)
class Regularizer:
    """Base class: options are dataclass fields; state is built by :meth:`setup`.

    Subclasses set ``needs_inputs`` when :meth:`penalty` reads the batch (LwF); the others
    depend on the parameters only, so they also work while training on stored features.
    """

    needs_inputs: ClassVar[bool] = False
    #: The option that ``regularize_strength`` (CLI ``--regularize-strength``) sets.
    strength: ClassVar[str] = "lam"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(
                    f"regularizer option {f.name}={value} must be non-negative; "
                    "0 switches that term off"
                )
        self._ready = False

    def options(self) -> dict[str, Any]:
        """The options as a JSON-ready dict (saved with the model artifact)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def setup(
        self,
        model: nn.Module,
        *,
        backbone: Backbone | None = None,
        reference_loader: Iterable[Any] | None = None,
        device: torch.device | str | None = None,
        loss_fn: Any = None,
    ) -> None:
        """Snapshot what must be kept; call once before the first update.

        Args:
            model: the model being fine-tuned, at its pretrained weights.
            backbone: the backbone inside ``model``; defaults to ``model.backbone``.
            reference_loader: batches of inputs (a tensor, or a tuple/list whose first item is
                the inputs) on which to measure the pretrained model (EWC's Fisher).
            device: where the snapshot lives; defaults to the backbone's device.
            loss_fn: ``loss_fn(outputs, targets)`` for EWC's empirical Fisher when the backbone
                has no source classifier.
        """
        raise NotImplementedError

    def penalty(
        self,
        model: nn.Module,
        inputs: torch.Tensor | None = None,
        outputs: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss term, already multiplied by its strength, and metrics to log.

        Args:
            model: the model being trained (same object as in :meth:`setup`).
            inputs: the batch's inputs (needed when ``needs_inputs``).
            outputs: the head's outputs on the batch (unused by the built-in regularizers).
            features: the backbone's features on ``inputs`` if already computed; saves LwF a
                second forward pass through the student backbone.
        """
        raise NotImplementedError

    def _check_ready(self) -> None:
        if not self._ready:
            raise RuntimeError(f"{type(self).__name__}.setup(model, ...) must be called first")


REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer")


def create_regularizer(name: str, **options: Any) -> Regularizer:
    """A regularizer by registered name (``ewc``, ``l2sp``, ``lwf``) with its strengths."""
    import graft.protect  # noqa: F401  (registers the built-in regularizers)

    cls = REGULARIZERS.get(name)
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(
            f"regularizer {name!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(valid))}"
        )
    return cls(**{k: v for k, v in options.items() if v is not None})


# ---------------------------------------------------------------- parameter helpers
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
    """Detached copies of the backbone parameters (the anchor θ*)."""
    return {n: p.detach().to(device, copy=True) for n, p in backbone_params(backbone)}


def first_item(batch: Any) -> torch.Tensor:
    """The inputs of a loader batch: the tensor itself or the first item of a tuple/list."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise ConfigError(
        f"reference batches must be a tensor or (inputs, ...) tuples, got {type(batch).__name__}"
    )


def resolve_device(backbone: Backbone, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    p = next(backbone.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
