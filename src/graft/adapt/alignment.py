"""What DANN, CORAL and MMD share as extensions of the training loop.

An alignment method is an ``nn.Module`` whose ``forward(source_feats, target_feats, progress)``
returns its weighted loss and metrics; it is itself the loop's extension, named ``adapt``::

    method = create_adapter("dann", feature_dim=backbone.num_features, weight=1.0)
    method.attach(target_paths, batch_size=32, seed=0, record=record)
    # the loop: setup per stage, then every step
    loss, metrics = method.loss(model, x, features, outputs, progress)  # a target batch inside

In every stage that runs the backbone it draws a batch of target images
(:class:`~graft.adapt.targets.TargetBatches`), runs the backbone on it and adds its loss on
(source features, target features); the loop logs the metrics per epoch as
``train_adapt_<metric>`` (``train_adapt_domain_acc`` for DANN). Its own parameters (DANN's
discriminator) join the stage's optimizer at the head's rate and travel with checkpoints.
Outside the loop, :meth:`Alignment.align` is the loss on two feature batches.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from graft.adapt.targets import TargetBatches
from graft.errors import ConfigError
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.adapt.record import AdaptationRecord
    from graft.data.base import Dataset
    from graft.model import GraftModel
    from graft.strategies.base import Plan, Stage


class Alignment(nn.Module, ExtensionBase):
    """Shared hooks of the alignment methods; subclasses take ``feature_dim`` then options."""

    stage: ClassVar[str] = "align"
    name = "adapt"
    _runner: Any  # this module, or its DDP wrapper in a distributed run

    def __init__(self) -> None:
        super().__init__()
        self.targets: TargetBatches | None = None
        self.record: AdaptationRecord | None = None
        object.__setattr__(self, "_runner", self)  # not a submodule: DDP may wrap it later

    def align(
        self, source_feats: torch.Tensor, target_feats: torch.Tensor, progress: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted alignment loss and metrics; goes through ``forward`` (hooks, DDP).

        Args:
            source_feats: backbone features of a labeled source batch.
            target_feats: backbone features of an unlabeled target batch.
            progress: fraction of training done, 0 to 1 (schedules DANN's reversal strength).

        Shape:
            - source_feats: ``(n_source, feature_dim)``; target_feats: ``(n_target, feature_dim)``.
            - Output: a scalar.
        """
        result: tuple[torch.Tensor, dict[str, float]] = self(source_feats, target_feats, progress)
        return result

    def options(self) -> dict[str, Any]:
        """The constructor options as a JSON-ready dict (saved with the model artifact)."""
        params = inspect.signature(type(self).__init__).parameters
        return {n: getattr(self, n) for n in params if n != "self" and hasattr(self, n)}

    def attach(
        self,
        target: Sequence[Path],
        *,
        batch_size: int = 32,
        seed: int = 0,
        augment: bool = True,
        num_workers: int = 0,
        record: AdaptationRecord | None = None,
    ) -> Alignment:
        """The unlabeled target images to align with, and the record to keep; returns ``self``.

        Args: as :class:`~graft.adapt.targets.TargetBatches`, and ``record``, which
        :meth:`on_epoch` and :meth:`finish` fill.
        """
        self.targets = TargetBatches(
            target, batch_size=batch_size, seed=seed, augment=augment, num_workers=num_workers
        )
        self.record = record
        return self

    # ------------------------------------------------------------ the loop's hooks
    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> bool:
        """Move to Accelerate's device and start this stage's target batches."""
        if stage.kind == "pretext" or self.targets is None:
            return False
        self.to(accelerator.device)
        rank, world = accelerator.process_index, accelerator.num_processes
        if world > 1 and any(True for _ in self.parameters()):
            object.__setattr__(self, "_runner", accelerator.prepare_model(self))
        self.targets.start(model, stage, rank, world)
        return True

    def loss(
        self,
        model: GraftModel,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The alignment loss of this batch's features and a target batch's, with metrics."""
        assert self.targets is not None, "setup answered False: the loop adds no loss here"
        target = self.targets.next(progress).to(features.device, non_blocking=True)
        target_features = model.backbone(target)
        self.train()
        result: tuple[torch.Tensor, dict[str, float]] = self._runner(
            features, target_features, progress
        )
        return result

    def on_epoch(self, row: dict[str, Any]) -> None:
        """Log the alignment metrics, then add the target report's ``target_*`` metrics."""
        if self.record is not None:
            self.record.on_epoch(row)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """The method's weights (DANN's discriminator), detached copies for checkpoints."""
        state = super().state_dict(*args, **kwargs)
        return {k: v.detach().clone() for k, v in state.items()}

    def parameter_groups(self, stage: Stage) -> list[dict[str, Any]]:
        """Its parameters as one optimizer group at the head's rate (none for CORAL, MMD)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return []
        lr = stage.lr * (stage.multipliers[-1] or 1.0)
        return [{"params": params, "lr": lr, "name": self.name}]

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """``model.info["adaptation"]``: method, options, target images, active stages."""
        del dataset, cfg
        return self.record.finish(model) if self.record is not None else self.options()


def active_stages(plan: Plan, method: str) -> list[str]:
    """Stages that train the backbone: the only ones where feature alignment can act.

    Raises:
        ConfigError: every stage keeps the backbone frozen (the message says what to pass).
    """
    active = [s.name for s in plan.stages if s.epochs > 0 and not s.backbone_frozen]
    if not active:
        auto = any("strategy auto" in note for note in plan.notes)
        raise ConfigError(
            f"adapt={method!r} aligns backbone features, but strategy {plan.strategy!r}"
            f"{' (chosen by --strategy auto for this data)' if auto else ''} keeps the backbone "
            "frozen in every stage, so adaptation would do nothing; pass a strategy that "
            "fine-tunes it (--strategy two_stage, fine_tune_top, full or progressive) or "
            "adapt='rotation'"
        )
    return active


__all__ = ["Alignment", "active_stages"]
