"""Arms and budgets: every registered arm's plan stays within the shared epoch budget."""

from __future__ import annotations

import pytest

from graft._registry import UnknownNameError
from graft.errors import ConfigError
from graft.evaluate.arms import ARMS, BUDGETS, Budget, resolve_budget
from graft.strategies import create_strategy

GROUPS = ["stem", "blocks.0", "blocks.1", "blocks.2", "final", "head"]


@pytest.mark.parametrize("name", ARMS.names())
@pytest.mark.parametrize("epochs", [1, 2, 3, 4, 7, 12])
def test_every_arm_plans_within_the_budget(name: str, epochs: int) -> None:
    arm = ARMS.get(name)
    per, options = arm.fit_options(epochs)
    plan = create_strategy(arm.strategy, **options).plan(GROUPS, epochs=per, lr=1e-3)
    assert 1 <= plan.total_epochs <= epochs
    assert plan.total_epochs > epochs - min(arm.stages, epochs)  # at most a remainder is left
    trains_backbone = any(not s.backbone_frozen for s in plan.stages)
    if epochs >= arm.stages:  # fewer epochs than stages: progressive keeps only its head stage
        assert trains_backbone == (name != "feature_extraction")
    assert arm.pretrained == (arm.kind == "transfer") and arm.description


def test_two_stage_uses_exactly_the_budget() -> None:
    for epochs in (2, 5, 12):
        per, options = ARMS.get("two_stage").fit_options(epochs)
        assert per + options["head_epochs"] == epochs


def test_presets_and_overrides() -> None:
    quick = resolve_budget("quick", epochs=6, arms=["two_stage"], fractions=[0.5, 1])
    assert quick.epochs == 6 and quick.arms == ("two_stage",) and quick.fractions == (0.5, 1)
    assert quick.image_size == BUDGETS["quick"].image_size  # untouched options stay the preset's
    assert resolve_budget("standard", epochs=None) == BUDGETS["standard"]


def test_budget_errors_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="known budgets are quick, standard"):
        resolve_budget("huge")
    with pytest.raises(ConfigError, match="--fractions must be in"):
        Budget(fractions=(0.0, 1.0))
    with pytest.raises(ConfigError, match="--epochs"):
        Budget(epochs=0)
    with pytest.raises(UnknownNameError, match="two_stage"):
        Budget(arms=("two_stages",))
