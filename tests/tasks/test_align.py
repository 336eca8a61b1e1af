"""Targets of other data re-encoded in a model's class, label and subtask order."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from graft.errors import DataError
from graft.tasks import Classification, MultiLabel, MultiTask, Regression
from graft.tasks.spec import align_targets


def test_classification_maps_onto_the_models_classes() -> None:
    spec = Classification.spec_for(["a", "b", "c"])
    out = align_targets(spec, np.array([0, 1, 1]), ["b", "c"])
    assert out.tolist() == [1, 2, 2]
    with pytest.raises(DataError, match=r"\['z'\] are not known"):
        align_targets(spec, np.array([0]), ["z"])


def test_multilabel_columns_follow_the_models_labels() -> None:
    spec = MultiLabel.spec_for(["big", "even", "odd"])
    out = align_targets(spec, np.array([[1.0, 0.0], [0.0, 1.0]]), ["odd", "big"])
    assert out.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]


def test_multitask_finds_each_task_by_name() -> None:
    cls = replace(Classification.spec_for(["a", "b"]), name="c")
    reg = replace(Regression.spec_for(np.array([[0.0], [2.0]]), ["v"]), name="v")
    spec = MultiTask.spec_for([cls, reg])
    subtasks = [
        {"name": "v", "kind": "regression", "columns": 1, "target_names": ["v"]},
        {"name": "c", "kind": "classification", "columns": 1, "class_names": ["b"]},
    ]
    out = align_targets(spec, np.array([[5.0, 0.0], [7.0, 0.0]]), None, subtasks)
    assert out.tolist() == [[1.0, 5.0], [1.0, 7.0]]
    with pytest.raises(DataError, match="no column for task 'c'"):
        align_targets(spec, np.array([[5.0]]), None, subtasks[:1])
