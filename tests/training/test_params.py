"""Freezing, BatchNorm policy and parameter groups, checked on a tiny backbone during training."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from graft.data import load as load_data
from graft.model import GraftModel
from graft.strategies.base import Stage
from graft.testing import tiny_backbone
from graft.training.loop import TrainConfig, train
from graft.training.params import apply_trainable, frozen_norm_modules, param_groups
from graft.workflows.fit import make_plan, task_spec_for


def _model(digits_dir: Path, image_size: int = 32) -> tuple[GraftModel, object]:
    data = load_data(digits_dir, seed=0)
    model = GraftModel(tiny_backbone(image_size=image_size), task_spec_for(data))
    return model, data


def test_frozen_params_and_bn_statistics_do_not_move(digits_dir: Path) -> None:
    model, data = _model(digits_dir)
    n = len(model.backbone.groups)
    stage = Stage("top-1", epochs=2, lr=1e-2, multipliers=(*([0.0] * (n - 1)), 1.0, 1.0))
    from graft.strategies.base import Plan

    plan = Plan("test", (*model.backbone.group_names, "head"), (stage,))
    before = copy.deepcopy(model.state_dict())
    apply_trainable(model, stage)
    frozen_bn = {id(m) for m in frozen_norm_modules(model)}
    assert frozen_bn, "the tiny backbone must have frozen BatchNorm layers for this test"
    frozen_names = {k for k, p in model.named_parameters() if not p.requires_grad}
    train(
        model,
        plan,
        data,
        TrainConfig(batch_size=16, progress=False, augment=False),
        log=lambda s: None,
    )
    after = model.state_dict()
    for name, module in model.named_modules():
        if id(module) in frozen_bn:
            assert isinstance(module, nn.BatchNorm2d)
            assert torch.equal(before[f"{name}.running_mean"], after[f"{name}.running_mean"]), name
            assert torch.equal(before[f"{name}.running_var"], after[f"{name}.running_var"]), name
    for name in frozen_names:
        assert torch.equal(before[name], after[name]), f"frozen parameter {name} changed"
    changed = [k for k in before if k.startswith("head.") and not torch.equal(before[k], after[k])]
    assert changed, "the head trained"


def test_discriminative_rates_reach_the_optimizer(digits_dir: Path) -> None:
    model, _ = _model(digits_dir)
    plan = make_plan(model, "full", epochs=1, lr=1.0, layer_decay=0.5, lr_factor=1.0)
    (stage,) = plan.stages
    apply_trainable(model, stage)
    groups = param_groups(model, stage)
    opt = torch.optim.AdamW(groups)
    by_name = {g["name"]: g["lr"] for g in opt.param_groups}
    assert by_name["head"] == 1.0
    names = model.backbone.group_names
    for depth, name in enumerate(reversed(names), start=1):
        if name in by_name:
            assert by_name[name] == 0.5**depth
    for g in opt.param_groups:
        if g["name"].endswith(".no_decay"):
            assert g["weight_decay"] == 0.0


def test_train_bn_only_trains_norm_layers_and_head(digits_dir: Path) -> None:
    model, _ = _model(digits_dir)
    n = len(model.backbone.groups)
    stage = Stage("bn", 1, 1e-3, (*([0.0] * n), 1.0), bn="train_bn_only")
    apply_trainable(model, stage)
    for module in model.backbone.modules():
        for p in module.parameters(recurse=False):
            assert p.requires_grad == isinstance(
                module, nn.BatchNorm2d | nn.LayerNorm | nn.GroupNorm
            )
    assert all(p.requires_grad for p in model.head.parameters())


def test_bn_eval_keeps_every_statistic_while_weights_train(digits_dir: Path) -> None:
    from graft.strategies.base import Plan
    from graft.training.params import norm_modules

    model, data = _model(digits_dir)
    n = len(model.backbone.groups)
    stage = Stage("all", epochs=1, lr=1e-2, multipliers=(1.0,) * (n + 1), bn="eval")
    plan = Plan("test", (*model.backbone.group_names, "head"), (stage,))
    before = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(batch_size=16, progress=False, augment=False)
    train(model, plan, data, cfg, log=lambda s: None)
    after = model.state_dict()
    names = {id(m): k for k, m in model.named_modules()}
    bns = [names[id(m)] for m in norm_modules(model)]
    assert bns, "the tiny backbone has BatchNorm layers"
    for name in bns:
        for stat in ("running_mean", "running_var"):
            assert torch.equal(before[f"{name}.{stat}"], after[f"{name}.{stat}"]), name
    assert any(not torch.equal(before[f"{b}.weight"], after[f"{b}.weight"]) for b in bns)

    # The same stage under the default policy moves the statistics of trainable layers.
    model, _ = _model(digits_dir)
    before = copy.deepcopy(model.state_dict())
    moving = Plan(plan.strategy, plan.groups, (Stage("all", 1, 1e-2, stage.multipliers),))
    train(model, moving, data, cfg, log=lambda s: None)
    after = model.state_dict()
    assert any(
        not torch.equal(before[f"{b}.running_mean"], after[f"{b}.running_mean"]) for b in bns
    )
