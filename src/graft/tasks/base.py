"""What every task shares: the spec (data), the head module, the Task interface, the registry.

A :class:`TaskSpec` is data (saved in the artifact); a task class registered in ``TASKS`` turns
it into a head module, a loss, target encoding (regression targets are standardised for
training and reported in original units) and metrics. Each task lives in its own module
(``classification``, ``regression``, ``multilabel``, ``multitask``) and registers itself here;
``graft.tasks`` imports them all, so importing anything from ``graft.tasks`` registers them.
This module imports none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from graft._registry import Registry


@dataclass(frozen=True)
class TaskSpec:
    """What the head predicts; enough to rebuild it and to decode its outputs.

    Args:
        kind: a registered task (``classification``, ``regression``).
        num_outputs: classes, or regression targets.
        class_names: classification labels, in output order.
        target_names: regression target names.
        target_mean: per-target mean used to standardise regression targets.
        target_std: per-target standard deviation used to standardise regression targets.
        dropout: dropout before the head's linear layer (MC dropout samples it at predict).
        name: the task's name inside a multi-task model (prefixes its metrics and columns).
        subtasks: the tasks of a multi-task head, in output order.
        loss_weight: weight of this task's loss inside a multi-task model.
        threshold: multi-label decision threshold on each class probability.
        temperature: classification logits are divided by it before the softmax (temperature
            scaling fitted on validation, Guo et al. 2017; 1.0 = as trained).
    """

    kind: str
    num_outputs: int
    class_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None
    dropout: float = 0.0
    name: str | None = None
    subtasks: tuple[TaskSpec, ...] | None = None
    loss_weight: float = 1.0
    threshold: float = 0.5
    temperature: float = 1.0

    @property
    def target_width(self) -> int:
        """Columns this task takes in a multi-task target matrix."""
        if self.kind == "classification":
            return 1
        if self.kind == "multitask":
            return sum(t.target_width for t in self.subtasks or ())
        return self.num_outputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        d = dict(d)
        for k in ("class_names", "target_names", "target_mean", "target_std"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        if d.get("subtasks") is not None:
            d["subtasks"] = tuple(cls.from_dict(t) for t in d["subtasks"])
        return cls(**d)


class Head(nn.Module):
    """Dropout then a linear layer: the new output layer.

    Shape:
        - Input: ``(batch, in_features)``.
        - Output: ``(batch, num_outputs)`` logits or standardised values.
    """

    def __init__(self, in_features: int, num_outputs: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x))


class Task:
    """How one kind of target is trained and reported. Subclasses register in ``TASKS``."""

    kind: ClassVar[str] = ""
    monitor: ClassVar[str] = "val_loss"

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.class_weights: torch.Tensor | None = None

    @classmethod
    def spec_from_data(
        cls,
        targets: np.ndarray,
        *,
        class_names: list[str] | None = None,
        target_names: list[str] | None = None,
        dropout: float = 0.0,
    ) -> TaskSpec:
        """The spec for training targets (in dataset encoding) and their names."""
        raise NotImplementedError(f"task {cls.kind!r} cannot be built from a dataset alone")

    def build_head(self, in_features: int) -> Head:
        return Head(in_features, self.spec.num_outputs, self.spec.dropout)

    def encode(self, targets: np.ndarray) -> torch.Tensor:
        """Dataset targets -> training targets."""
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Raw head outputs -> probabilities or values in original units."""
        raise NotImplementedError

    def decode_targets(self, encoded: np.ndarray) -> np.ndarray:
        """Training targets -> dataset targets (inverse of :meth:`encode`)."""
        return encoded

    def metrics(self, targets: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def rows(self, decoded: np.ndarray, std: np.ndarray | None = None) -> list[dict[str, Any]]:
        """One prediction record per sample, for CSV/JSON output (with spreads when given)."""
        raise NotImplementedError


TASKS: Registry[type[Task]] = Registry("task")


def create_task(spec: TaskSpec) -> Task:
    """The task object for ``spec`` (its kind must be registered in :data:`TASKS`)."""
    return TASKS.get(spec.kind)(spec)
