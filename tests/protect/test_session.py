"""Regularizers inside graft.fit: the loop's extension, options, activity, retention, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import graft
from graft.data import load as load_data
from graft.errors import ConfigError
from graft.model import GraftModel
from graft.protect import REGULARIZERS, create_regularizer
from graft.protect.params import copy_state
from graft.testing import tiny_backbone
from graft.workflows.extensions import protect_extensions, train_config_for
from graft.workflows.fit import make_plan, task_spec_for, train_config


def _protect(
    model: GraftModel, plan: Any, data: Any, *, log: Callable[[str], None] = print, **options: Any
) -> list[Any]:
    """The protection extensions of one fit (the regularizer first), as graft.fit builds them."""
    return protect_extensions(model, plan, data, options, log=log)


@pytest.fixture
def setting(digits_dir: Path) -> tuple[GraftModel, object, object]:
    data = load_data(digits_dir)
    model = GraftModel(tiny_backbone(image_size=32), task_spec_for(data))
    plan = make_plan(model, "two_stage", epochs=1, lr=1e-3)
    return model, plan, data


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_strength_and_options_reach_the_regularizer(name: str, setting) -> None:
    model, plan, data = setting
    cls = REGULARIZERS.get(name)
    term = _protect(
        model, plan, data, regularize=name, regularize_strength=0.25, log=lambda s: None
    )[0]
    assert term is not None and term.name == name
    assert getattr(term, cls.strength) == 0.25


def test_lwf_temperature_and_unknown_option(setting) -> None:
    model, plan, data = setting
    term = _protect(
        model, plan, data, regularize="lwf", regularize_options={"temperature": 4.0}, log=print
    )[0]
    assert term is not None and term.temperature == 4.0
    with pytest.raises(ConfigError, match="has no option tau"):
        _protect(model, plan, data, regularize="lwf", regularize_options={"tau": 1})


def test_term_anchors_once_and_drops_the_metric_prefix(setting) -> None:
    model, plan, _data = setting
    term = create_regularizer("l2sp", beta=0.0).attach(log=lambda s: None)
    stage = plan.stages[-1]
    term.setup(model, stage, None)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.01)
    term.setup(model, stage, None)  # a later stage: the anchor stays at the first weights
    x = torch.randn(2, 3, 32, 32)
    outputs, features = model(x, return_features=True)
    loss, metrics = term.loss(model, x, features, outputs, 0.5)
    assert loss.item() > 0
    assert "drift" in metrics and not any(k.startswith("l2sp_") for k in metrics)


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_resumed_run_anchors_at_the_pretrained_weights(name: str, setting) -> None:
    model, plan, _data = setting
    pretrained = copy_state(model.backbone)
    reg = create_regularizer(name, **({"beta": 0.0} if name == "l2sp" else {}))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    term = reg.attach(reference=lambda: [(x, torch.zeros(4))], pretrained=pretrained)
    with torch.no_grad():  # a checkpoint's moved weights, loaded before the stage starts
        for p in model.backbone.parameters():
            p.add_(0.01)
    moved = copy_state(model.backbone)
    term.setup(model.eval(), plan.stages[-1], None)
    assert all(torch.equal(v, moved[k]) for k, v in copy_state(model.backbone).items())
    outputs, features = model(x, return_features=True)
    assert term.loss(model, x, features, outputs, 0.0)[0].item() > 0
    model.backbone.load_state_dict(pretrained)
    outputs, features = model(x, return_features=True)
    assert term.loss(model, x, features, outputs, 0.0)[0].item() == pytest.approx(0.0, abs=1e-7)


def test_l2sp_turns_the_optimizer_decay_off_unless_given(setting) -> None:
    model, plan, data = setting
    exts = _protect(model, plan, data, regularize="l2sp", log=lambda s: None)
    cfg, quiet = train_config(weight_decay=1e-4), lambda s: None
    assert train_config_for(cfg, exts, weight_decay_given=False, log=quiet).weight_decay == 0.0
    assert train_config_for(cfg, exts, weight_decay_given=True, log=quiet).weight_decay == 1e-4


def test_frozen_backbone_says_the_term_is_inactive(digits_dir: Path) -> None:
    lines: list[str] = []
    model = graft.fit(
        digits_dir,
        backbone=tiny_backbone(image_size=32),
        strategy="feature_extraction",
        epochs=1,
        regularize="ewc",
        progress=False,
        log=lines.append,
    )
    assert any("regularize ewc: inactive" in line for line in lines)
    assert not any("train_ewc_loss" in row for row in model.info["history"])
    assert model.info["retention"]["top1_agreement"] == 1.0  # the backbone never changed
    assert model.info["retention"]["mean_kl"] == pytest.approx(0.0, abs=1e-6)


def test_ewc_fisher_on_given_source_images(setting, digits_dir: Path) -> None:
    model, plan, data = setting
    term = _protect(
        model, plan, data, regularize="ewc", regularize_options={"samples": 3},
        ewc_data=digits_dir / "1", log=lambda s: None,
    )[0]  # fmt: skip
    assert term is not None
    term.setup(model, plan.stages[-1], None)
    assert term.fisher_mode == "sampled"


def test_retention_on_given_images(setting, digits_dir: Path) -> None:
    model, plan, data = setting
    extensions = _protect(model, plan, data, retention_data=digits_dir / "3", log=lambda s: None)
    with torch.no_grad():
        for p in model.backbone.model.conv_stem.parameters():
            p.mul_(-1.0)
    for ext in extensions:
        ext.finish(model, data, train_config(batch_size=8))
    moved = model.info["retention"]
    assert moved["samples"] == 15 and str(digits_dir / "3") in moved["reference"]
    assert moved["mean_kl"] > 0


def test_errors_say_what_to_do(setting, digits_dir: Path) -> None:
    model, plan, data = setting
    with pytest.raises(ConfigError, match="pass it with --regularize ewc"):
        _protect(model, plan, data, regularize="l2sp", ewc_data=digits_dir)
    with pytest.raises(ConfigError, match="set them on the Regularizer object"):
        _protect(model, plan, data, regularize=create_regularizer("ewc"), regularize_strength=1.0)
    scratch = GraftModel(graft.backbone("small_cnn", pretrained=False), model.task_spec)
    with pytest.raises(ConfigError, match="no original classifier"):
        _protect(scratch, plan, data, retention_data=digits_dir)
    with pytest.raises(ConfigError, match="use the l2sp or ewc"):
        term = _protect(scratch, plan, data, regularize="lwf", log=lambda s: None)[0]
        assert term is not None
        term.setup(scratch, plan.stages[-1], None)
