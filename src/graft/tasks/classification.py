"""Binary and multi-class classification: one class per sample, softmax and cross-entropy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from graft.metrics import classification_metrics
from graft.tasks.base import TASKS, Task, TaskSpec


@TASKS.register("classification")
class Classification(Task):
    """Binary and multi-class classification: cross-entropy; accuracy, top-k, macro-F1."""

    kind = "classification"

    @classmethod
    def spec_for(cls, class_names: list[str], dropout: float = 0.0) -> TaskSpec:
        return TaskSpec("classification", len(class_names), tuple(class_names), dropout=dropout)

    @classmethod
    def spec_from_data(
        cls,
        targets: np.ndarray,
        *,
        class_names: list[str] | None = None,
        target_names: list[str] | None = None,
        dropout: float = 0.0,
    ) -> TaskSpec:
        return cls.spec_for(list(class_names or []), dropout=dropout)

    def encode(self, targets: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(targets, dtype=np.int64))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = self.class_weights
        return F.cross_entropy(outputs, targets, weight=None if w is None else w.to(outputs.device))

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        z = outputs / self.spec.temperature
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def metrics(self, targets: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
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
