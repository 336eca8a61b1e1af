"""Multi-label classification: any number of labels per sample, a sigmoid per class."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from graft.metrics import multilabel_metrics
from graft.tasks.base import TASKS, Task, TaskSpec


@TASKS.register("multilabel")
class MultiLabel(Task):
    """Several labels per sample: a sigmoid per class, binary cross-entropy; micro/macro F1."""

    kind = "multilabel"

    @classmethod
    def spec_for(cls, class_names: list[str], dropout: float = 0.0) -> TaskSpec:
        return TaskSpec("multilabel", len(class_names), tuple(class_names), dropout=dropout)

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
        return torch.as_tensor(np.asarray(targets, dtype=np.float32).reshape(len(targets), -1))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = self.class_weights
        pos_weight = None if w is None else w.to(outputs.device)
        return F.binary_cross_entropy_with_logits(outputs, targets.float(), pos_weight=pos_weight)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-outputs))

    def metrics(self, targets: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
        return multilabel_metrics(np.asarray(targets), decoded, threshold=self.spec.threshold)

    def rows(self, decoded: np.ndarray, std: np.ndarray | None = None) -> list[dict[str, Any]]:
        names = self.spec.class_names or tuple(str(i) for i in range(decoded.shape[1]))
        out = []
        for n, probs in enumerate(decoded):
            row: dict[str, Any] = {
                "prediction": ";".join(
                    c for c, p in zip(names, probs, strict=True) if p >= self.spec.threshold
                )
            }
            row.update({f"p_{c}": float(p) for c, p in zip(names, probs, strict=True)})
            if std is not None:
                row.update({f"p_{c}_std": float(v) for c, v in zip(names, std[n], strict=True)})
            out.append(row)
        return out
