"""The one extension contract of the training loop: regularizers, domain adaptation, reports.

An extension is set up at the start of every stage that runs the backbone (it may answer
``False``: inactive in that stage), adds a weighted loss every step there, sees every epoch's
metrics row, saves its state with each checkpoint, may bring trainable parameters of its own
(DANN's discriminator) and, after training, returns what goes into the run record::

    ext.setup(model, stage, accelerator)            # -> False when inactive in this stage
    loss, metrics = ext.loss(model, x, features, outputs, progress)
    ext.on_epoch(row)                               # e.g. add target_* metrics to the row
    ext.state_dict() / ext.load_state_dict(state)   # checkpoints and --resume
    ext.parameter_groups(stage)                     # its own optimizer groups
    ext.finish(model, dataset, cfg)                 # a JSON-ready dict for the run record

Stages trained on stored features (a frozen backbone) run no extension's loss. Subclass
:class:`ExtensionBase` to get a no-op for every hook an extension does not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from graft.data.base import Dataset
    from graft.model import GraftModel
    from graft.strategies.base import Stage


@runtime_checkable
class Extension(Protocol):
    """What the loop calls on every extension (see the module docstring)."""

    @property
    def name(self) -> str:
        """The extension's name: its history columns are ``train_<name>_*``."""

    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> bool | None: ...

    def loss(
        self,
        model: GraftModel,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def on_epoch(self, row: dict[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def parameter_groups(self, stage: Stage) -> list[dict[str, Any]]: ...

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]: ...


class ExtensionBase:
    """Defaults for every hook: inactive, no state, no parameters, nothing to record."""

    name: str = "extension"

    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> bool | None:
        """Prepare for ``stage``; return False when the extension adds no loss in it."""
        del model, stage, accelerator
        return False

    def loss(
        self,
        model: GraftModel,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted loss of this batch and its metrics (only called where active)."""
        raise NotImplementedError(f"extension {self.name!r} adds no loss")

    def on_epoch(self, row: dict[str, Any]) -> None:
        """See (and possibly extend) an epoch's metrics row before it is logged."""
        del row

    def state_dict(self) -> dict[str, Any]:
        """State saved with every checkpoint (empty by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` when a run resumes."""
        del state

    def parameter_groups(self, stage: Stage) -> list[dict[str, Any]]:
        """Optimizer groups of the extension's own parameters (none by default)."""
        del stage
        return []

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """What goes into the run record after training (a JSON-ready dict)."""
        del model, dataset, cfg
        return {}


def setup_stage(
    extensions: Sequence[Any], model: GraftModel, stage: Stage, accelerator: Any
) -> list[Any]:
    """Set every extension up for ``stage``; return those active in it (``setup`` returning
    anything but False)."""
    return [e for e in extensions if e.setup(model, stage, accelerator) is not False]


def extension_loss(
    ext: Any,
    model: GraftModel,
    x: torch.Tensor,
    features: torch.Tensor,
    outputs: torch.Tensor,
    progress: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``ext.loss(...)``: the one way the loop asks an extension for its loss."""
    result: tuple[torch.Tensor, dict[str, float]] = ext.loss(model, x, features, outputs, progress)
    return result


def extension_states(extensions: Sequence[Any]) -> dict[str, Any]:
    """The state of every extension that has one (e.g. DANN's discriminator)."""
    return {e.name: e.state_dict() for e in extensions if hasattr(e, "state_dict")}


def restore_states(extensions: Sequence[Any], state: dict[str, Any]) -> None:
    """Load each extension's checkpointed state (older checkpoints call it ``terms``)."""
    saved = state.get("extensions", state.get("terms", {}))
    for ext in extensions:
        if ext.name in saved and hasattr(ext, "load_state_dict"):
            ext.load_state_dict(saved[ext.name])


def extension_groups(extensions: Sequence[Any], stage: Stage, weight_decay: float) -> list[dict]:
    """Optimizer groups of the extensions' own parameters; unset decay gets the loop's."""
    out: list[dict[str, Any]] = []
    for ext in extensions:
        get = getattr(ext, "parameter_groups", None)
        out += [{"weight_decay": weight_decay, **g} for g in (get(stage) if get else [])]
    return out


__all__ = [
    "Extension",
    "ExtensionBase",
    "extension_groups",
    "extension_loss",
    "extension_states",
    "restore_states",
    "setup_stage",
]
