"""Layer-group importance: mean |gradient| per group, measured without changing the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.data import load as load_data
from graft.errors import DataError
from graft.evaluate.importance import importance_batches, layer_importance
from graft.model import GraftModel
from graft.testing import tiny_backbone
from graft.workflows.fit import task_spec_for


@pytest.fixture(scope="module")
def model_and_batches(digits_dir: Path) -> tuple[GraftModel, list]:
    data = load_data(digits_dir)
    torch.manual_seed(0)
    model = GraftModel(tiny_backbone(), task_spec_for(data))
    return model, importance_batches(model, data.train, n_batches=2, batch_size=8)


def test_one_score_per_group_and_the_head(model_and_batches: tuple[GraftModel, list]) -> None:
    model, batches = model_and_batches
    scores = layer_importance(model, batches)
    assert list(scores) == [*model.backbone.group_names, "head"]
    assert all(v >= 0 and torch.isfinite(torch.tensor(v)) for v in scores.values())
    assert scores["head"] > 0


def test_head_score_matches_a_hand_computed_gradient(
    model_and_batches: tuple[GraftModel, list],
) -> None:
    model, batches = model_and_batches
    scores = layer_importance(model, batches)
    model.eval()
    expected = 0.0
    for x, y in batches:
        model.zero_grad()
        model.task.loss(model(x), y).backward()
        params = list(model.head.parameters())
        expected += sum(float(p.grad.abs().sum()) for p in params) / sum(p.numel() for p in params)
    model.zero_grad(set_to_none=True)
    assert scores["head"] == pytest.approx(expected / len(batches), rel=1e-5)


def test_model_is_left_as_it_was(model_and_batches: tuple[GraftModel, list]) -> None:
    model, batches = model_and_batches
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_importance(model, batches)
    assert model.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included
    for p in model.parameters():
        p.requires_grad_(True)


def test_batches_are_seeded_and_sized(model_and_batches: tuple[GraftModel, list]) -> None:
    _, batches = model_and_batches
    assert [len(y) for _, y in batches] == [8, 8]
    assert batches[0][0].shape[1:] == (3, 32, 32)


def test_no_batches_is_an_error(model_and_batches: tuple[GraftModel, list]) -> None:
    model, _ = model_and_batches
    with pytest.raises(DataError, match="no batches"):
        layer_importance(model, [])


def test_existing_gradients_are_restored(model_and_batches: tuple[GraftModel, list]) -> None:
    model, batches = model_and_batches
    x, y = batches[0]
    model.zero_grad(set_to_none=True)
    model.task.loss(model(x), y).backward()  # e.g. gradients accumulating in a training step
    before = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert before
    layer_importance(model, batches)
    after = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(after) == set(before)
    assert all(torch.equal(after[n], g) for n, g in before.items())
    model.zero_grad(set_to_none=True)
