"""Multi-task heads: several targets (each a registered task) on one backbone.

A multi-task head is one linear layer whose outputs are the concatenated outputs of its
subtasks (e.g. 10 class logits and 1 value); the target matrix holds each subtask's columns
side by side (a class index takes one column). The loss is the weighted sum of the subtasks'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from graft.tasks.base import TASKS, Task, TaskSpec, create_task


@TASKS.register("multitask")
class MultiTask(Task):
    """Several heads on one backbone, e.g. a class and a value, with weighted losses."""

    kind = "multitask"

    def __init__(self, spec: TaskSpec) -> None:
        super().__init__(spec)
        if not spec.subtasks:
            raise ValueError("a multitask spec needs subtasks")
        self.tasks = [create_task(t) for t in spec.subtasks]
        self.out_slices, self.target_slices = [], []
        o = c = 0
        for t in spec.subtasks:
            self.out_slices.append(slice(o, o + t.num_outputs))
            self.target_slices.append(slice(c, c + t.target_width))
            o, c = o + t.num_outputs, c + t.target_width

    @classmethod
    def spec_for(cls, subtasks: list[TaskSpec], dropout: float = 0.0) -> TaskSpec:
        return TaskSpec(
            "multitask",
            sum(t.num_outputs for t in subtasks),
            subtasks=tuple(subtasks),
            dropout=dropout,
        )

    def _parts(self, targets: np.ndarray) -> list[np.ndarray]:
        t = np.asarray(targets).reshape(len(targets), -1)
        parts = []
        for task, sl in zip(self.tasks, self.target_slices, strict=True):
            col = t[:, sl]
            parts.append(col[:, 0].astype(np.int64) if task.kind == "classification" else col)
        return parts

    def encode(self, targets: np.ndarray) -> torch.Tensor:
        cols = [
            task.encode(part).float().reshape(len(part), -1)
            for task, part in zip(self.tasks, self._parts(targets), strict=True)
        ]
        return torch.cat(cols, dim=1)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        total = outputs.new_zeros(())
        for task, o, c in zip(self.tasks, self.out_slices, self.target_slices, strict=True):
            t = targets[:, c]
            t = t[:, 0].long() if task.kind == "classification" else t
            total = total + task.spec.loss_weight * task.loss(outputs[:, o], t)
        return total

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                task.decode(outputs[:, o])
                for task, o in zip(self.tasks, self.out_slices, strict=True)
            ],
            axis=1,
        )

    def decode_targets(self, encoded: np.ndarray) -> np.ndarray:
        cols = [
            task.decode_targets(encoded[:, c]).reshape(len(encoded), -1)
            for task, c in zip(self.tasks, self.target_slices, strict=True)
        ]
        return np.concatenate(cols, axis=1)

    def metrics(self, targets: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for task, part, o in zip(self.tasks, self._parts(targets), self.out_slices, strict=True):
            for k, v in task.metrics(part, decoded[:, o]).items():
                out[f"{task.spec.name}_{k}"] = v
        return out

    def rows(self, decoded: np.ndarray, std: np.ndarray | None = None) -> list[dict[str, Any]]:
        merged: list[dict[str, Any]] = [{} for _ in range(len(decoded))]
        for task, o in zip(self.tasks, self.out_slices, strict=True):
            part_std = None if std is None else std[:, o]
            for row, sub in zip(merged, task.rows(decoded[:, o], part_std), strict=True):
                row.update({f"{task.spec.name}_{k}": v for k, v in sub.items()})
        return merged
