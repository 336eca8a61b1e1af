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


def test_auto_bn_is_eval_for_a_pretrained_backbone_and_frozen_for_a_random_one(
    digits_dir: Path,
) -> None:
    from dataclasses import replace

    from graft.training.params import bn_policy

    model, _ = _model(digits_dir)
    n = len(model.backbone.groups)
    stage = Stage("all", epochs=1, lr=1e-2, multipliers=(1.0,) * (n + 1))
    assert stage.bn == "auto"
    assert not model.backbone.spec.pretrained and bn_policy(model, stage) == "frozen"
    model.backbone.spec = replace(model.backbone.spec, pretrained=True)
    assert bn_policy(model, stage) == "eval"
    assert bn_policy(model, replace(stage, bn="train")) == "train"


def test_fine_tuning_keeps_the_head_fitted_on_stored_features(tmp_path: Path) -> None:
    """The head of a two-stage fit is fitted on stored features (inference-mode statistics);
    the fine-tuning stage of a pretrained backbone must see the same features. With the
    statistics moving (the old default), the first fine-tuning epoch's validation loss on
    digits jumped from about 0.5 to about 11 even at a rate where the weights hardly move."""
    from graft.backbones import create
    from graft.data.digits import write_digits
    from graft.strategies.base import Plan

    data = load_data(write_digits(tmp_path / "d", per_class=12, seed=0), seed=0)
    rows: dict[str, list[dict[str, object]]] = {}
    for bn in ("auto", "frozen"):
        torch.manual_seed(0)
        model = GraftModel(create("efficientnet_lite0", image_size=64), task_spec_for(data))
        n = len(model.backbone.groups)
        plan = Plan(
            "two_stage",
            (*model.backbone.group_names, "head"),
            (
                Stage("head", 1, 1e-3, (*([0.0] * n), 1.0), bn=bn),
                Stage("all", 1, 1e-7, (1.0,) * (n + 1), bn=bn),  # type: ignore[arg-type]
            ),
        )
        cfg = TrainConfig(
            batch_size=16, progress=False, augment=False, cache_dir=str(tmp_path / "c")
        )
        rows[bn] = train(model, plan, data, cfg, log=lambda s: None)
    for bn, history in rows.items():
        start = next(r for r in history if r.get("kind") == "linear_start")
        tuned = next(r for r in history if r["stage"] == "all")
        rows[bn] = [start, tuned]
    start, tuned = rows["auto"]
    assert float(tuned["val_loss"]) < float(start["val_loss"]) + 0.2  # type: ignore[arg-type]
    start, tuned = rows["frozen"]  # the dangerous side: statistics move, the head is lost
    assert float(tuned["val_loss"]) > float(start["val_loss"]) + 1.0  # type: ignore[arg-type]
