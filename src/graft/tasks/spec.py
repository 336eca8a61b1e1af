"""``spec_for``: the head's :class:`TaskSpec` for a loaded dataset (the one place that builds it)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.errors import ConfigError, DataError
from graft.tasks.base import TASKS, TaskSpec
from graft.tasks.multitask import MultiTask

if TYPE_CHECKING:
    from graft.data.base import Dataset


def spec_for(
    data: Dataset, *, dropout: float = 0.0, loss_weights: dict[str, float] | None = None
) -> TaskSpec:
    """The head's task spec from a dataset (regression scaling from the training split only).

    Args:
        data: the loaded dataset; ``data.task`` names a registered task.
        dropout: dropout before the head's linear layer.
        loss_weights: multi-task only: weight of each subtask's loss by name (default 1.0).

    Raises:
        ConfigError: an unknown task, or ``loss_weights`` that name no subtask (or are given
            for a task that is not multi-task).
    """
    if data.task not in TASKS:
        raise ConfigError(f"unknown task {data.task!r}; known: {', '.join(TASKS.names())}")
    if data.task == "multitask":
        subtasks = _subtask_specs(data, loss_weights or {})
        return MultiTask.spec_for(subtasks, dropout=dropout)
    if loss_weights:
        raise ConfigError(f"loss_weights are for multitask data; this dataset is {data.task}")
    return TASKS.get(data.task).spec_from_data(
        data.train.targets,
        class_names=list(data.class_names) if data.class_names is not None else None,
        target_names=list(data.target_names) if data.target_names is not None else None,
        dropout=dropout,
    )


def _subtask_specs(data: Dataset, weights: dict[str, float]) -> list[TaskSpec]:
    subtasks: list[dict[str, Any]] = list(getattr(data, "subtasks", None) or [])
    if not subtasks:
        raise ConfigError(f"{data.source}: multitask data must describe its subtasks")
    unknown = sorted(set(weights) - {str(t["name"]) for t in subtasks})
    if unknown:
        names = ", ".join(str(t["name"]) for t in subtasks)
        raise ConfigError(f"loss_weights: no task named {', '.join(unknown)}; tasks: {names}")
    specs, col = [], 0
    train = np.asarray(data.train.targets).reshape(len(data.train.targets), -1)
    for t in subtasks:
        kind = str(t["kind"])
        width = int(t.get("columns", 1))
        part = train[:, col : col + width]
        if kind == "classification":
            part = part[:, 0].astype(np.int64)
        spec = TASKS.get(kind).spec_from_data(
            part,
            class_names=t.get("class_names"),
            target_names=t.get("target_names"),
        )
        weight = float(weights.get(str(t["name"]), 1.0))
        specs.append(replace(spec, name=str(t["name"]), loss_weight=weight))
        col += width
    return specs


def align_targets(
    spec: TaskSpec,
    targets: np.ndarray,
    class_names: list[str] | None,
    subtasks: list[dict[str, Any]] | None = None,
) -> np.ndarray:
    """Dataset targets re-encoded in the model's order (classes, labels, subtasks).

    Data read from another folder or table numbers its classes by what it holds; this maps
    them onto the classes the model predicts.

    Raises:
        DataError: the data holds classes, labels or tasks the model does not know.
    """
    mine = list(spec.class_names or [])
    if spec.kind == "classification" and class_names is not None and list(class_names) != mine:
        _check_known(class_names, mine, "classes")
        lookup = np.array([mine.index(n) for n in class_names], dtype=np.int64)
        return lookup[np.asarray(targets, dtype=np.int64)]
    if spec.kind == "multilabel" and class_names is not None and list(class_names) != mine:
        _check_known(class_names, mine, "labels")
        t = np.asarray(targets).reshape(len(targets), -1)
        out = np.zeros((len(t), len(mine)), dtype=np.float32)
        out[:, [mine.index(n) for n in class_names]] = t
        return out
    if spec.kind == "multitask" and subtasks is not None:
        return _align_subtasks(spec, np.asarray(targets), subtasks)
    return targets


def _check_known(names: list[str], mine: list[str], what: str) -> None:
    unknown = sorted(set(names) - set(mine))
    if unknown:
        raise DataError(
            f"{what} {unknown} are not known to this model (it predicts {mine}); "
            f"evaluate on data with the model's {what}"
        )


def _align_subtasks(spec: TaskSpec, targets: np.ndarray, subtasks: list[dict[str, Any]]) -> Any:
    t = targets.reshape(len(targets), -1)
    columns, col = {}, 0
    for s in subtasks:
        width = int(s.get("columns", 1))
        columns[str(s["name"])] = (s, t[:, col : col + width])
        col += width
    parts = []
    for sub in spec.subtasks or ():
        if sub.name not in columns:
            raise DataError(
                f"the data has no column for task {sub.name!r} (it has {', '.join(columns)}); "
                "evaluate on a table with every target column the model was trained on"
            )
        info, part = columns[str(sub.name)]
        if sub.kind == "classification":
            part = part[:, 0].astype(np.int64)
        aligned = align_targets(sub, part, info.get("class_names"))
        parts.append(np.asarray(aligned, dtype=np.float32).reshape(len(t), -1))
    return np.concatenate(parts, axis=1)
