"""The adapter contract: domain adaptation with unlabeled target data, as loss modules.

An alignment adapter is an ``nn.Module`` that scores how far apart source and target
features are; its loss is added to the task loss, and it needs no target labels::

    adapter = create_adapter("dann", feature_dim=backbone.num_features, weight=1.0)
    ...
    loss, metrics = adapter.loss(source_feats, target_feats, progress)  # progress: 0 -> 1
    total = task_loss + loss  # already multiplied by ``weight``

Adapters with parameters (DANN's discriminator) must be moved to the device and given to the
optimizer (at the head's learning rate). A ``pretrain`` adapter (rotation) is not a loss: it
is a step run before the supervised stages, through its ``pretrain`` method.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import nn

from graft._registry import Registry
from graft.errors import ConfigError

STAGES = ("align", "pretrain")


class Adapter(nn.Module):
    """Base class. ``stage`` says how the training loop uses it: ``align`` or ``pretrain``.

    Subclasses take ``feature_dim`` first, then keyword options.
    """

    stage: ClassVar[str] = "align"

    def loss(
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
        return self(source_feats, target_feats, progress)

    def options(self) -> dict[str, Any]:
        """The constructor options as a JSON-ready dict (saved with the model artifact)."""
        params = inspect.signature(type(self).__init__).parameters
        return {n: getattr(self, n) for n in params if n != "self" and hasattr(self, n)}


ADAPTERS: Registry[type[Adapter]] = Registry("adapter")


def create_adapter(name: str, feature_dim: int, **options: Any) -> Adapter:
    """An adapter by registered name (``dann``, ``coral``, ``mmd``, ``rotation``) with options."""
    import graft.adapt  # noqa: F401  (registers the built-in adapters)

    cls = ADAPTERS.get(name)
    params = inspect.signature(cls.__init__).parameters
    valid = {n for n in params if n not in ("self", "feature_dim")}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(
            f"adapter {name!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(valid)) or '(none)'}"
        )
    return cls(feature_dim, **{k: v for k, v in options.items() if v is not None})


def check_pair(name: str, source: torch.Tensor, target: torch.Tensor, min_rows: int = 1) -> None:
    """Two 2-D feature batches of the same width with enough rows, or a clear error."""
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(
            f"{name}: need (n, d) source and target features of the same width, "
            f"got {tuple(source.shape)} and {tuple(target.shape)}"
        )
    if len(source) < min_rows or len(target) < min_rows:
        raise ValueError(
            f"{name}: need at least {min_rows} rows per domain, "
            f"got {len(source)} source and {len(target)} target"
        )


def check_non_negative(name: str, **values: float) -> None:
    for key, value in values.items():
        if value < 0:
            raise ConfigError(f"{name} option {key}={value} must be non-negative")
