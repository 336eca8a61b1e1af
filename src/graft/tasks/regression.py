"""Regression: one or more numeric targets, standardised for training, reported in original units."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from graft.metrics import regression_metrics
from graft.tasks.base import TASKS, Task, TaskSpec


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

    @classmethod
    def spec_from_data(
        cls,
        targets: np.ndarray,
        *,
        class_names: list[str] | None = None,
        target_names: list[str] | None = None,
        dropout: float = 0.0,
    ) -> TaskSpec:
        return cls.spec_for(targets, list(target_names or []), dropout=dropout)

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
