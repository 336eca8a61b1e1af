"""What EWC, L2-SP and LwF share as extensions of the training loop: one anchoring, one record.

A regularizer is a dataclass of options (its fields) and is itself the loop's
:class:`~graft.training.extensions.Extension`::

    reg = create_regularizer("l2sp", alpha=0.1)       # configure from options
    reg.attach(pretrained=copy_state(model.backbone), reference=..., log=print)
    reg.setup(model, stage, accelerator)              # anchors once, at the first tuning stage
    loss, metrics = reg.loss(model, x, features, outputs, progress)
    reg.finish(model, dataset, cfg)                   # {"name": ..., **options} -> the record

Outside the loop, :meth:`Penalty.anchor` snapshots what must be kept and :meth:`Penalty.penalty`
returns the weighted term with ``<name>_``-prefixed metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from graft.errors import ConfigError
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.backbones.base import Backbone
    from graft.data.base import Dataset
    from graft.model import GraftModel
    from graft.strategies.base import Stage

#: Returns the batches on which EWC measures its Fisher (built only when needed).
ReferenceFactory = Callable[[], Iterable[Any]]


class Penalty(ExtensionBase):
    """Shared hooks of the regularizers; subclasses are ``kw_only`` dataclasses of options.

    Subclasses set ``name`` (the registered name), ``strength`` (the option that
    ``regularize_strength`` sets) and ``needs_inputs`` (the penalty reads the batch: LwF), and
    implement :meth:`anchor` and :meth:`penalty`.
    """

    name: ClassVar[str] = "penalty"  # type: ignore[misc]
    needs_inputs: ClassVar[bool] = False
    #: The option that ``regularize_strength`` (CLI ``--regularize-strength``) sets.
    strength: ClassVar[str] = "lam"

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(
                    f"regularizer option {f.name}={value} must be non-negative; "
                    "0 switches that term off"
                )
        self._ready = False
        self.pretrained: dict[str, torch.Tensor] | None = None
        self.reference: ReferenceFactory | None = None
        self.log: Callable[[str], None] = print

    def options(self) -> dict[str, Any]:
        """The options as a JSON-ready dict (saved with the model artifact)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def attach(
        self,
        *,
        pretrained: dict[str, torch.Tensor] | None = None,
        reference: ReferenceFactory | None = None,
        log: Callable[[str], None] = print,
    ) -> Penalty:
        """What the loop's :meth:`setup` needs besides the options; returns ``self``.

        Args:
            pretrained: the backbone's state dict to anchor at (default: the weights at the
                first :meth:`setup`); pass the weights captured before training, so a resumed
                run anchors at the same place.
            reference: builds the batches for :meth:`anchor` (EWC's Fisher); called once.
            log: where to say when the regularizer was anchored.
        """
        self.pretrained, self.reference, self.log = pretrained, reference, log
        return self

    # ------------------------------------------------------------ the method itself
    def anchor(
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
            device: where the snapshot lives; defaults to where the backbone lives.
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
        """The loss term, already multiplied by its strength, and ``<name>_`` metrics."""
        raise NotImplementedError

    def _check_ready(self) -> None:
        if not self._ready:
            raise RuntimeError(
                f"{type(self).__name__}: call setup(model, stage, accelerator) or "
                "anchor(model, ...) first"
            )

    # ------------------------------------------------------------ the loop's hooks
    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> bool:
        """Anchor at the first stage that runs the backbone, on Accelerate's device."""
        if stage.kind == "pretext":
            return False  # a self-supervised stage: nothing to keep yet, no task head trains
        if self._ready:
            return True
        device = getattr(accelerator, "device", None)
        batches = self.reference() if self.reference is not None else None
        current = None
        if self.pretrained is not None:
            current = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}
            model.backbone.load_state_dict(self.pretrained)
        try:
            self.anchor(model, reference_loader=batches, device=device, loss_fn=model.task.loss)
        finally:
            if current is not None:
                model.backbone.load_state_dict(current)
        self.pretrained = None
        where = "the pretrained weights" if current is not None else "the current weights"
        self.log(f"  {self.name}: anchored at {where} (stage {stage.name!r})")
        return True

    def loss(
        self,
        model: GraftModel,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted penalty and its metrics (their ``<name>_`` prefix dropped)."""
        del progress
        value, metrics = self.penalty(model, x, outputs, features=features)
        prefix = f"{self.name}_"
        return value, {k.removeprefix(prefix): v for k, v in metrics.items()}

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """The method and its options, also kept in ``model.info["regularize"]``."""
        del dataset, cfg
        record = {"name": self.name, **self.options()}
        model.info["regularize"] = record
        return record


__all__ = ["Penalty", "ReferenceFactory"]
