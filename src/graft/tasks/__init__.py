"""Tasks: the head on top of the backbone, its loss, target encoding, metrics and records.

One module per task registers it in :data:`graft.tasks.base.TASKS`; importing this package
imports them all, so every registered task is available from any ``graft.tasks`` import.
This layer imports nothing above it (no model, training, workflows or evaluate).
"""

from __future__ import annotations

from graft.tasks.base import TASKS, Head, Task, TaskSpec, create_task
from graft.tasks.classification import Classification
from graft.tasks.multilabel import MultiLabel
from graft.tasks.multitask import MultiTask
from graft.tasks.regression import Regression
from graft.tasks.spec import spec_for

__all__ = [
    "TASKS",
    "Classification",
    "Head",
    "MultiLabel",
    "MultiTask",
    "Regression",
    "Task",
    "TaskSpec",
    "create_task",
    "spec_for",
]
