"""Weighted Kendall tau matches the Transfer-Learning Library's published model-selection table."""

from __future__ import annotations

import pytest

from graft.measure.ranking import rank_agreement, weighted_tau

# TLlib, examples/model_selection/README.md, "Model Ranking Benchmark on CIFAR10": ten ImageNet
# models (GoogleNet, Inception V3, ResNet50/101/152, DenseNet121/169/201, MobileNet V2, MNasNet).
FINETUNED_ACC = [96.2, 97.5, 96.8, 97.7, 97.9, 97.2, 97.4, 97.4, 95.7, 96.8]
SCORES = {
    "HScore": [5.911, 6.363, 6.567, 6.901, 6.945, 6.210, 6.547, 6.706, 5.928, 6.018],
    "LEEP": [-1.385, -1.259, -1.010, -0.829, -0.838, -1.035, -0.934, -0.888, -1.100, -1.066],
    "LogME": [0.293, 0.349, 0.388, 0.463, 0.469, 0.302, 0.343, 0.369, 0.291, 0.304],
    "NCE": [-1.139, -1.060, -1.007, -0.838, -0.851, -1.006, -0.946, -0.866, -1.089, -1.086],
}
#: The table's "Weighted Tau" row (three decimals).
PUBLISHED = {"HScore": 0.800, "LEEP": 0.638, "LogME": 0.785, "NCE": 0.714}


@pytest.mark.parametrize("score", list(SCORES))
def test_weighted_tau_matches_tllib_cifar10(score: str) -> None:
    assert weighted_tau(SCORES[score], FINETUNED_ACC) == pytest.approx(PUBLISHED[score], abs=5e-4)


def test_weighted_tau_weighs_the_top_of_the_ranking() -> None:
    truth = [1.0, 2.0, 3.0, 4.0, 5.0]
    swap_top = [1.0, 2.0, 3.0, 5.0, 4.0]  # the best two swapped
    swap_tail = [2.0, 1.0, 3.0, 4.0, 5.0]  # the worst two swapped
    a, b = rank_agreement(swap_top, truth), rank_agreement(swap_tail, truth)
    assert a.kendall == pytest.approx(b.kendall) == pytest.approx(0.8)  # plain tau: same
    assert a.weighted < b.weighted < 1.0  # a mistake at the top costs more
    assert rank_agreement(truth, truth).weighted == pytest.approx(1.0)
    assert rank_agreement(truth[::-1], truth).weighted == pytest.approx(-1.0)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="one value per candidate"):
        weighted_tau([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 2 candidates"):
        weighted_tau([1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        weighted_tau([1.0, float("nan")], [1.0, 2.0])
