"""Contract tests over every registered strategy, and the announced shape of each plan."""

from __future__ import annotations

import pytest

from graft.errors import ConfigError
from graft.strategies import STRATEGIES, Plan, Stage, create_strategy

GROUPS = ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "final", "head"]


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_makes_a_valid_plan(name: str) -> None:
    plan = create_strategy(name).plan(GROUPS, epochs=2, lr=1e-3)
    assert isinstance(plan, Plan) and plan.stages
    for stage in plan.stages:
        assert len(stage.multipliers) == len(GROUPS)
        assert stage.multipliers[-1] > 0, "the head always trains"
        assert stage.lr <= 1e-3
    assert Plan.from_dict(plan.to_dict()) == plan
    table = plan.table()
    assert all(g in table for g in GROUPS)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_kebab_case_names_resolve(name: str) -> None:
    assert type(create_strategy(name.replace("_", "-"))) is STRATEGIES.get(name)


def test_feature_extraction_freezes_the_whole_backbone() -> None:
    (stage,) = create_strategy("feature_extraction").plan(GROUPS, epochs=3, lr=1e-3).stages
    assert stage.multipliers == (0, 0, 0, 0, 0, 0, 1.0) and stage.backbone_frozen


def test_two_stage_head_then_top_groups_10x_slower() -> None:
    head, tune = create_strategy("two_stage", top=2).plan(GROUPS, epochs=3, lr=1e-3).stages
    assert head.backbone_frozen and head.lr == 1e-3
    assert tune.lr == pytest.approx(1e-4)
    assert [m > 0 for m in tune.multipliers] == [False] * 4 + [True] * 3
    assert not tune.backbone_frozen


def test_two_stage_lr_factor_bounds() -> None:
    with pytest.raises(ConfigError, match="lr_factor"):
        create_strategy("two_stage", lr_factor=1.5)


def test_progressive_unfreezes_one_more_group_per_stage_top_down() -> None:
    plan = create_strategy("progressive", layer_decay=1.0).plan(GROUPS, epochs=1, lr=1e-3)
    n = len(GROUPS) - 1
    assert len(plan.stages) == n + 1
    for s, stage in enumerate(plan.stages):
        trainable = [i for i, m in enumerate(stage.multipliers[:-1]) if m > 0]
        assert trainable == list(range(n - s, n)), "groups unfreeze from the top down"
    lrs = [s.lr for s in plan.stages]
    assert lrs == sorted(lrs, reverse=True), "learning rate decreases stage by stage"


def test_layer_decay_gives_discriminative_rates() -> None:
    (stage,) = (
        create_strategy("full", layer_decay=0.5, lr_factor=1.0)
        .plan(GROUPS, epochs=1, lr=1.0)
        .stages
    )
    assert stage.multipliers == (0.5**6, 0.5**5, 0.5**4, 0.5**3, 0.5**2, 0.5, 1.0)


def test_explicit_group_lrs_override_decay() -> None:
    rates = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    (stage,) = (
        create_strategy("full", group_lrs=rates, lr_factor=1.0)
        .plan(GROUPS, epochs=1, lr=1.0)
        .stages
    )
    assert stage.multipliers == (*rates, 1.0)


def test_fine_tune_top_fraction() -> None:
    (stage,) = create_strategy("fine_tune_top", fraction=0.5).plan(GROUPS, epochs=1, lr=1e-3).stages
    assert sum(m > 0 for m in stage.multipliers[:-1]) == 3


def test_unknown_strategy_and_option_errors_are_actionable() -> None:
    with pytest.raises(KeyError, match="two_stage"):
        create_strategy("two-stag")
    with pytest.raises(ConfigError, match="no option"):
        create_strategy("feature_extraction", top=3)


def test_stage_validation() -> None:
    with pytest.raises(ValueError, match="lr"):
        Stage("x", 1, 0.0, (1.0,))
    with pytest.raises(ValueError, match="multipliers"):
        Plan("x", ("a", "head"), (Stage("x", 1, 1e-3, (1.0,)),))


@pytest.mark.parametrize("rates", [(0.1, 0.2), (0.1,) * 7])
def test_group_lrs_of_the_wrong_length_name_the_option_and_the_count(
    rates: tuple[float, ...],
) -> None:
    strategy = create_strategy("full", group_lrs=rates)
    with pytest.raises(ConfigError, match=r"group_lrs has \d rates .* give 6"):
        strategy.plan(GROUPS, epochs=1, lr=1.0)
