"""How well a transferability score ranks backbones: Kendall's tau and its weighted form.

The weighted tau (Vigna, "A Weighted Correlation Index for Rankings with Ties", WWW 2015) with
scipy's default hyperbolic weights counts disagreements among the top of the ranking more than
those in its tail: the measure the Transfer-Learning Library (TLlib) reports for model selection,
computed the same way (``scipy.stats.weightedtau(scores, accuracies)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankAgreement:
    """Agreement of a score's ranking with the fine-tuned truth over ``n`` candidates."""

    kendall: float
    kendall_p: float
    weighted: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"kendall": self.kendall, "kendall_p": self.kendall_p, "weighted_tau": self.weighted}


def _pair(
    scores: Sequence[float] | np.ndarray, truth: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"scores and truth need one value per candidate: {s.shape} vs {t.shape}")
    if len(s) < 2:
        raise ValueError(f"ranking agreement needs at least 2 candidates, got {len(s)}")
    if not (np.isfinite(s).all() and np.isfinite(t).all()):
        raise ValueError("scores and truth must be finite (a failed candidate has no rank)")
    return s, t


def weighted_tau(
    scores: Sequence[float] | np.ndarray, truth: Sequence[float] | np.ndarray
) -> float:
    """Weighted Kendall tau of ``scores`` against ``truth`` (e.g. fine-tuned accuracies)."""
    from scipy.stats import weightedtau

    s, t = _pair(scores, truth)
    return float(weightedtau(s, t).statistic)


def rank_agreement(
    scores: Sequence[float] | np.ndarray, truth: Sequence[float] | np.ndarray
) -> RankAgreement:
    """Kendall's tau-b (with its p-value) and the weighted tau of ``scores`` against ``truth``."""
    from scipy.stats import kendalltau

    s, t = _pair(scores, truth)
    k = kendalltau(s, t)
    return RankAgreement(float(k.statistic), float(k.pvalue), weighted_tau(s, t), len(s))
