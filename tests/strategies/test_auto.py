"""The advisor's decision: the matrix on measured facts, the guard, the strategy it makes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from graft.strategies import create_strategy
from graft.strategies.auto import Auto, Facts, as_strategy, decide
from graft.strategies.budget import split_epochs
from graft.strategies.input_size import pick_size, size_candidates

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


@pytest.mark.parametrize(("side", "native", "expected"), [
    (28, 224, (32, 64, 128)),  # Fashion-MNIST on Lite0: the side rounded up, doubling
    (8, 224, (32, 64, 128)),  # never below one step of 32 px
    (100, 224, (128, 224)),  # a single candidate is compared with the native size
    (150, 224, ()),  # not much smaller: the native size stays
    (None, 224, ()),  # unknown size: no search
])  # fmt: skip
def test_size_candidates(side: int | None, native: int, expected: tuple[int, ...]) -> None:
    assert size_candidates(side, native) == expected


def test_the_smallest_size_within_one_standard_error_of_the_best() -> None:
    probes = [(32, 0.80), (64, 0.84), (128, 0.85)]
    assert pick_size(probes, 0.02) == 64
    assert pick_size(probes, 0.05) == 32
    assert pick_size(probes, 0.0) == 128
    assert pick_size([(64, 0.9), (128, 0.7)], 0.01) == 64, "the best is also the smallest"


def test_the_size_and_its_reasons_are_said() -> None:
    searched = replace(
        SMALL_NEAR, image_size=64, native_size=224, data_side=28, size_noise=0.02,
        size_probes=((32, 0.80), (64, 0.84), (128, 0.85)),
    )  # fmt: skip
    advice = decide(searched)
    (line,) = [x for x in advice.lines() if x.startswith("  input size")]
    assert advice.image_size == 64 and "images are 28 px" in line and "native 224" in line
    assert "0.840 at 64" in line and "0.850 at 128" in line and "within noise" in line
    given = decide(replace(SMALL_NEAR, image_size=96, size_given=True, data_side=28))
    assert "input size 96 px: yours (--image-size), kept" in "\n".join(given.lines())
    assert not [x for x in decide(SMALL_NEAR).lines() if "input size" in x], "text: no size"


def test_a_strong_guard_says_training_from_scratch_is_likely_to_win() -> None:
    lose = replace(SMALL_NEAR, probe=0.90, pixel_probe=0.97, source="digits/")
    strong = decide(replace(lose, probe_noise=0.01))  # 7 points = 7 standard errors
    text = "\n".join(strong.lines())
    assert strong.guard and strong.scratch_likely
    assert "training from scratch is likely to win" in text and "7.0 points" in text
    assert "`graft fit digits/ --backbone small_cnn --no-pretrained`" in text
    assert "`graft compare digits/`" in text
    assert strong.summary().startswith("→ negative-transfer guard"), "the decision stays last"
    weak = decide(replace(lose, probe_noise=0.05))  # within two standard errors: no claim
    assert (
        weak.guard
        and not weak.scratch_likely
        and "from scratch is likely" not in "\n".join(weak.lines())
    )
    text_data = decide(replace(lose, probe_noise=0.01, raw_input="TF-IDF + logistic regression"))
    assert "small_cnn" not in "\n".join(text_data.lines()) and text_data.scratch_likely


@pytest.mark.parametrize("choice", ["two_stage", "feature_extraction", "full"])
@pytest.mark.parametrize("total", [1, 2, 7, 12])
def test_auto_splits_a_total_budget_among_the_chosen_stages(choice: str, total: int) -> None:
    auto = Auto(choice=choice, total_epochs=total)
    plan = auto.plan(GROUPS, epochs=99, lr=1e-3)  # the total wins over epochs per stage
    assert plan.total_epochs == total
    stages = len(create_strategy(choice).plan(GROUPS, epochs=1, lr=1e-3).stages)
    per, options = split_epochs(choice, {}, total, stages=stages)
    same = create_strategy(choice, **options).plan(GROUPS, epochs=per, lr=1e-3)
    assert [s.epochs for s in plan.stages] == [s.epochs for s in same.stages], "one rule"


def test_the_budget_reaches_auto_not_the_chosen_strategy() -> None:
    logged: list[str] = []
    auto = as_strategy(decide(replace(SMALL_NEAR, gap="far")), {"total_epochs": 9}, logged.append)
    assert auto.total_epochs == 9 and not logged
    assert auto.plan(GROUPS, epochs=5, lr=1e-3).total_epochs == 9
    with pytest.raises(ValueError, match="total_epochs"):
        Auto(total_epochs=0)


def test_a_probe_difference_within_noise_is_a_tie_broken_by_the_score() -> None:
    # Features 1 point below the raw input, with 2 points of noise: no guard when the score
    # prefers the features (the text demo's case: one validation article apart).
    close = replace(SMALL_NEAR, probe=0.89, pixel_probe=0.90, probe_noise=0.02)
    assert close.probes_tie and not close.features_lose
    assert not decide(close).guard
    assert "within noise, broken by logme" in "\n".join(decide(close).lines())
    beyond = replace(close, probe_noise=0.005)
    assert beyond.features_lose and decide(beyond).guard
    score_says_lose = replace(close, score=0.1, pixel_score=0.2)
    assert score_says_lose.features_lose


def test_an_unmeasured_gap_is_read_as_near_when_the_features_win_beyond_noise() -> None:
    text = replace(
        SMALL_NEAR, gap=None, gap_values=None, gap_note="text: no reference sample",
        probe=0.92, pixel_probe=0.85, probe_noise=0.02, raw_input="TF-IDF + logistic regression",
    )  # fmt: skip
    advice = decide(text)
    assert advice.strategy == "feature_extraction"
    assert "a near gap (inferred: the frozen features beat TF-IDF" in advice.summary()
    unclear = decide(replace(text, probe=0.88))  # 3 points: less than two standard errors
    assert unclear.strategy == "two_stage" and "moderate gap (assumed)" in unclear.summary()
