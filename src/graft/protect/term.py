"""A regularizer as a loss term of the training loop (:class:`graft.training.loop.LossTerm`).

The loop calls :meth:`RegularizerTerm.setup` at the start of every stage that runs the
backbone; the regularizer itself is set up once, at the first of them (after the head-only
stages, so EWC's empirical Fisher sees a trained head), against the backbone weights captured
when the term was made: the pretrained ones, also when a run resumes from a checkpoint. Its
penalty and metrics go to the history and the CSV log as ``train_<name>_loss`` and
``train_<name>_<metric>`` (e.g. ``train_ewc_loss``, ``train_lwf_kl``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch

from graft.protect.base import Regularizer
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.data.base import Dataset
    from graft.model import GraftModel
    from graft.strategies.base import Stage

#: Returns the batches on which EWC measures its Fisher (built only when needed).
ReferenceFactory = Callable[[], Iterable[Any]]


class RegularizerTerm(ExtensionBase):
    """A :class:`Regularizer` as an :class:`~graft.training.extensions.Extension` of the loop.

    Args:
        regularizer: a configured regularizer (``create_regularizer("ewc", lam=1.0)``).
        name: the name in the history (default: the registered name).
        reference: builds the batches for :meth:`Regularizer.setup` (EWC's Fisher); called once.
        anchor: the backbone's state dict to anchor at (default: the weights at the first
            :meth:`setup`); pass the pretrained weights captured before training.
        log: where to say when the regularizer was set up.

    Example:
        >>> term = RegularizerTerm(create_regularizer("l2sp", alpha=0.1), name="l2sp")
        >>> graft.fit("photos/", strategy="full", terms=[term])  # doctest: +SKIP
    """

    def __init__(
        self,
        regularizer: Regularizer,
        *,
        name: str,
        reference: ReferenceFactory | None = None,
        anchor: dict[str, torch.Tensor] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.regularizer = regularizer
        self.name = name
        self.reference = reference
        self.anchor = anchor
        self.log = log
        self.ready = False

    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> bool:
        """Snapshot the pretrained state at the first stage that trains the backbone."""
        if stage.kind == "pretext":
            return False  # a self-supervised stage: nothing to keep yet, no task head trains
        if self.ready:
            return True
        device = getattr(accelerator, "device", None)
        batches = self.reference() if self.reference is not None else None
        current = copy_state(model.backbone) if self.anchor is not None else None
        try:
            if self.anchor is not None:
                model.backbone.load_state_dict(self.anchor)
            self.regularizer.setup(
                model, reference_loader=batches, device=device, loss_fn=model.task.loss
            )
        finally:
            if current is not None:
                model.backbone.load_state_dict(current)
        self.ready, self.anchor = True, None
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
        penalty, metrics = self.regularizer.penalty(model, x, outputs, features=features)
        prefix = f"{self.name}_"
        return penalty, {k.removeprefix(prefix): v for k, v in metrics.items()}

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """The method and its options, also kept in ``model.info["regularize"]``."""
        del dataset, cfg
        record = {"name": self.name, **self.regularizer.options()}
        model.info["regularize"] = record
        return record


def copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module``'s state dict (on the CPU)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
