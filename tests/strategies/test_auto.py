"""The advisor's decision: the matrix on measured facts, the guard, the strategy it makes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from graft.strategies import create_strategy
from graft.strategies.auto import Auto, Facts, as_strategy, decide

GROUPS = ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "final", "head"]
SMALL_NEAR = Facts(
    task="classification",
    n_train=200,
    n_outputs=10,
    gap="near",
    gap_values={"mmd": 0.0, "proxy_a_distance": 0.2, "coral": 0.0},
    gap_note="66 crops",
    score_name="logme",
    score=1.0,
    pixel_score=0.5,
    probe=0.9,
    pixel_probe=0.6,
)


def _depth(facts: Facts) -> int:
    """Backbone groups the advice unfreezes (0 = feature extraction)."""
    advice = decide(facts)
    plan = as_strategy(advice, None, print).plan(GROUPS, epochs=1, lr=1e-3)
    return max(sum(m > 0 for m in s.multipliers[:-1]) for s in plan.stages)


def test_small_near_data_gets_feature_extraction() -> None:
    advice = decide(SMALL_NEAR)
    assert advice.strategy == "feature_extraction" and not advice.guard
    assert any("small" in r for r in advice.reasons) and _depth(SMALL_NEAR) == 0


def test_more_data_or_a_farther_gap_unfreezes_deeper() -> None:
    large = replace(SMALL_NEAR, n_train=5000)
    moderate, far = replace(SMALL_NEAR, gap="moderate"), replace(SMALL_NEAR, gap="far")
    large_far = replace(large, gap="far")
    depths = [_depth(f) for f in (SMALL_NEAR, large, moderate, far, large_far)]
    assert depths[0] < depths[1] and depths[0] < depths[2] < depths[3] < depths[4]
    assert decide(large).strategy == "two_stage", "head first before unfreezing"
    assert decide(large_far).options["layer_decay"] < 1, "discriminative rates when deep"


def test_a_score_below_the_pixels_goes_one_step_deeper() -> None:
    weak = replace(SMALL_NEAR, score=0.1, pixel_score=0.5)
    assert _depth(weak) > _depth(SMALL_NEAR)


def test_an_unmeasured_gap_is_assumed_moderate_and_said() -> None:
    advice = decide(replace(SMALL_NEAR, gap=None, gap_values=None, gap_note="no reference"))
    assert "not measured (no reference)" in "\n".join(advice.lines())
    assert advice.strategy != "feature_extraction"


@pytest.mark.parametrize("facts", [
    replace(SMALL_NEAR, probe=0.5, pixel_probe=0.8),
    replace(SMALL_NEAR, probe=None, pixel_probe=None, constant_features=True),
])  # fmt: skip
def test_guard_never_settles_on_feature_extraction(facts: Facts) -> None:
    advice = decide(facts)
    assert advice.guard and advice.strategy != "feature_extraction"
    assert "negative-transfer guard" in advice.summary() and _depth(facts) == len(GROUPS) - 1


def test_user_options_override_the_advice() -> None:
    advice = decide(replace(SMALL_NEAR, gap="far"))
    auto = as_strategy(advice, {"top": 1, "patience": 5}, print)
    opts = dict(auto.choice_options)
    assert opts["top"] == 1 and "fraction" not in opts and opts["patience"] == 5
    dropped: list[str] = []
    as_strategy(decide(SMALL_NEAR), {"top": 3}, dropped.append)
    assert dropped and "top" in dropped[0]


def test_auto_without_data_plans_the_default_and_says_so() -> None:
    plan = create_strategy("auto").plan(GROUPS, epochs=2, lr=1e-3)
    assert plan.strategy == "two_stage" and "nothing measured" in plan.notes[-1]
    assert isinstance(create_strategy("auto"), Auto)


def test_a_tie_between_the_probes_goes_to_the_score() -> None:
    tie = replace(SMALL_NEAR, probe=1.0, pixel_probe=1.0)
    assert not decide(tie).guard and "a tie, broken by logme" in "\n".join(decide(tie).lines())
    assert decide(replace(tie, score=0.1, pixel_score=0.5)).guard


def test_a_random_backbone_trains_from_scratch() -> None:
    advice = decide(replace(SMALL_NEAR, pretrained=False))
    assert advice.strategy == "full" and advice.options == {"lr_factor": 1.0}
    assert "nothing to transfer" in advice.lines()[-1] and not advice.guard


def test_small_data_that_fine_tunes_keeps_batchnorm_statistics_fixed() -> None:
    far = decide(replace(SMALL_NEAR, gap="far"))
    assert far.strategy == "two_stage" and far.options["bn"] == "eval"
    assert "bn=eval" in far.summary()
    plan = as_strategy(far, None, print).plan(GROUPS, epochs=1, lr=1e-3)
    assert all(s.bn == "eval" for s in plan.stages)
    large_far = decide(replace(SMALL_NEAR, gap="far", n_train=100_000))
    assert "bn" not in large_far.options, "enough data re-estimates the statistics"
    assert "bn" not in decide(SMALL_NEAR).options, "feature extraction runs no BatchNorm"


def test_gap_line_carries_the_interval_when_measured() -> None:
    with_interval = {**(SMALL_NEAR.gap_values or {}), "proxy_a_low": 0.05, "proxy_a_high": 0.41}
    facts = replace(SMALL_NEAR, gap_values=with_interval)
    line = next(r for r in decide(facts).reasons if r.startswith("gap to the source"))
    assert "proxy A-distance 0.20 [0.05, 0.41]" in line
    assert decide(facts).strategy == decide(SMALL_NEAR).strategy  # the decision ignores it
