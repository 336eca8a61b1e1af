"""Tasks: target encoding, losses, decoding, records — reference values on small arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graft.tasks import (
    TASKS,
    Classification,
    MultiLabel,
    MultiTask,
    Regression,
    TaskSpec,
    create_task,
)


def _spec(kind: str) -> TaskSpec:
    if kind == "classification":
        return Classification.spec_for(["a", "b", "c"])
    if kind == "regression":
        return Regression.spec_for(np.array([[1.0], [3.0]]), ["y"])
    if kind == "multilabel":
        return MultiLabel.spec_for(["x", "y"])
    return MultiTask.spec_for([
        Classification.spec_for(["a", "b"]).__class__(**{**Classification.spec_for(["a", "b"]).to_dict(), "name": "cls"}),
        TaskSpec.from_dict({**Regression.spec_for(np.array([[0.0], [2.0]]), ["v"]).to_dict(), "name": "v"}),
    ])  # fmt: skip


def _targets(kind: str) -> np.ndarray:
    return {
        "classification": np.array([0, 2]),
        "regression": np.array([[1.0], [3.0]]),
        "multilabel": np.array([[1, 0], [1, 1]], dtype=np.float32),
        "multitask": np.array([[0, 0.0], [1, 2.0]], dtype=np.float32),
    }[kind]


@pytest.mark.parametrize("kind", TASKS.names())
def test_every_task_round_trips(kind: str) -> None:
    spec = _spec(kind)
    assert TaskSpec.from_dict(spec.to_dict()) == spec
    task = create_task(spec)
    encoded = task.encode(_targets(kind))
    head = task.build_head(4)
    out = head(torch.randn(2, 4))
    assert out.shape == (2, spec.num_outputs)
    loss = task.loss(out, encoded)
    assert loss.ndim == 0 and torch.isfinite(loss)
    decoded = task.decode(out.detach().numpy())
    assert decoded.shape == (2, spec.num_outputs)
    np.testing.assert_allclose(
        task.decode_targets(encoded.numpy()).reshape(2, -1).astype(float),
        _targets(kind).reshape(2, -1).astype(float), atol=1e-6,
    )  # fmt: skip
    assert len(task.rows(decoded)) == 2
    assert isinstance(task.metrics(_targets(kind), decoded), dict)


def test_regression_standardises_and_reports_in_original_units() -> None:
    spec = Regression.spec_for(np.array([[10.0], [20.0], [30.0]]), ["age"])
    assert spec.target_mean == (20.0,) and spec.target_std == pytest.approx((np.std([10, 20, 30]),))
    task = create_task(spec)
    z = task.encode(np.array([[30.0]])).numpy()
    assert z[0, 0] == pytest.approx(10 / np.std([10, 20, 30]))
    assert task.decode(z)[0, 0] == pytest.approx(30.0)
    assert task.rows(np.array([[12.5]]), np.array([[0.5]])) == [{"age": 12.5, "age_std": 0.5}]


def test_classification_softmax_and_records() -> None:
    task = create_task(Classification.spec_for(["cat", "dog"]))
    probs = task.decode(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(probs, [[0.25, 0.75]])
    assert task.rows(probs) == [{"prediction": "dog", "probability": 0.75}]


def test_multitask_loss_is_the_weighted_sum() -> None:
    cls = TaskSpec.from_dict(
        {**Classification.spec_for(["a", "b"]).to_dict(), "name": "c", "loss_weight": 2.0}
    )
    reg = TaskSpec.from_dict(
        {**Regression.spec_for(np.array([[0.0], [2.0]]), ["v"]).to_dict(), "name": "v"}
    )
    task = create_task(MultiTask.spec_for([cls, reg]))
    out = torch.tensor([[2.0, 0.0, 0.5], [0.0, 1.0, -0.5]])
    t = task.encode(np.array([[0, 0.0], [1, 2.0]]))
    expected = 2.0 * torch.nn.functional.cross_entropy(out[:, :2], torch.tensor([0, 1])) + (
        torch.nn.functional.mse_loss(out[:, 2:], torch.tensor([[-1.0], [1.0]]))
    )
    torch.testing.assert_close(task.loss(out, t), expected)
    metrics = task.metrics(np.array([[0, 0.0], [1, 2.0]]), task.decode(out.numpy()))
    assert {"c_accuracy", "v_rmse"} <= set(metrics)
