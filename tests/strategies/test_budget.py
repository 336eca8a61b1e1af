"""The epoch budget's split rule, shared by ``graft compare``'s arms and ``Auto(total_epochs)``."""

from __future__ import annotations

import pytest

from graft.strategies import create_strategy
from graft.strategies.budget import split_epochs

GROUPS = ["stem", "blocks.0", "blocks.1", "blocks.2", "final", "head"]


@pytest.mark.parametrize("total", [2, 3, 5, 12])
def test_two_stage_adds_up_to_the_total_the_head_taking_the_remainder(total: int) -> None:
    per, options = split_epochs("two_stage", {"top": 2}, total, stages=2)
    assert options == {"top": 2, "head_epochs": total - total // 2} and per == total // 2
    plan = create_strategy("two_stage", **options).plan(GROUPS, epochs=per, lr=1e-3)
    assert plan.total_epochs == total


def test_progressive_unfreezes_fewer_groups_when_epochs_are_short() -> None:
    assert split_epochs("progressive", {}, 7, stages=3) == (2, {"stage_epochs": 2, "max_groups": 2})
    assert split_epochs("progressive", {}, 2, stages=3) == (1, {"stage_epochs": 1, "max_groups": 1})


def test_one_stage_gets_the_total_and_auto_is_given_it() -> None:
    assert split_epochs("full", {"lr_factor": 1.0}, 6, stages=1) == (6, {"lr_factor": 1.0})
    assert split_epochs("auto", {}, 6, stages=1) == (6, {"total_epochs": 6})
    with pytest.raises(ValueError, match="at least 1 epoch"):
        split_epochs("full", {}, 0, stages=1)
