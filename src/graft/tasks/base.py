"""Heads and the tasks they serve: the new layer on top of the backbone, its loss and metrics.

A :class:`TaskSpec` is data (saved in the artifact); a task class registered in ``TASKS`` turns
it into a head module, a loss, target encoding (regression targets are standardised for
training and reported in original units) and metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

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


@TASKS.register("classification")
class Classification(Task):
    """Binary and multi-class classification: cross-entropy; accuracy, top-k, macro-F1."""

    kind = "classification"

    @classmethod
    def spec_for(cls, class_names: list[str], dropout: float = 0.0) -> TaskSpec:
        return TaskSpec("classification", len(class_names), tuple(class_names), dropout=dropout)

    def encode(self, targets: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(targets, dtype=np.int64))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = self.class_weights
        return F.cross_entropy(outputs, targets, weight=None if w is None else w.to(outputs.device))

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def metrics(self, targets: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
        from graft.tasks.metrics import classification_metrics

        names = list(self.spec.class_names or [])
        return classification_metrics(np.asarray(targets), decoded, class_names=names)

    def rows(self, decoded: np.ndarray, std: np.ndarray | None = None) -> list[dict[str, Any]]:
        names = self.spec.class_names or tuple(str(i) for i in range(decoded.shape[1]))
        out = []
        for n, i in enumerate(decoded.argmax(axis=1)):
            row: dict[str, Any] = {"prediction": names[i], "probability": float(decoded[n, i])}
            if std is not None:
                row["probability_std"] = float(std[n, i])
            out.append(row)
        return out


@TASKS.register("regression")
class Regression(Task):
    """One or more numeric targets: linear output, MSE on standardised targets; MAE, RMSE, R²."""

    kind = "regression"

    @classmethod
    def spec_for(
        cls, targets: np.ndarray, target_names: list[str], dropout: float = 0.0
    ) -> TaskSpec:
        t = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        std = t.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant target is left unscaled
        return TaskSpec(
            "regression",
            t.shape[1],
            target_names=tuple(target_names),
            target_mean=tuple(float(v) for v in t.mean(axis=0)),
            target_std=tuple(float(v) for v in std),
            dropout=dropout,
        )

    def _scale(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.spec.target_mean is not None and self.spec.target_std is not None
        return np.asarray(self.spec.target_mean), np.asarray(self.spec.target_std)

    def encode(self, targets: np.ndarray) -> torch.Tensor:
        mean, std = self._scale()
        t = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        return torch.as_tensor(((t - mean) / std).astype(np.float32))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        mean, std = self._scale()
        return outputs * std + mean

    def decode_targets(self, encoded: np.ndarray) -> np.ndarray:
        return self.decode(encoded)

    def metrics(self, targets: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
        from graft.tasks.metrics import regression_metrics

        t = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        names = list(self.spec.target_names or [])
        return regression_metrics(t, decoded, target_names=names)

    def rows(self, decoded: np.ndarray, std: np.ndarray | None = None) -> list[dict[str, Any]]:
        names = self.spec.target_names or tuple(f"y{i}" for i in range(decoded.shape[1]))
        out = []
        for n, values in enumerate(decoded):
            row: dict[str, Any] = {k: float(v) for k, v in zip(names, values, strict=True)}
            if std is not None:
                row.update({f"{k}_std": float(v) for k, v in zip(names, std[n], strict=True)})
            out.append(row)
        return out


def create_task(spec: TaskSpec) -> Task:
    import graft.tasks.multitask  # noqa: F401  (registers multilabel and multitask)

    return TASKS.get(spec.kind)(spec)
