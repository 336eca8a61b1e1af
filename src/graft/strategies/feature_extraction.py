"""Feature extraction: the backbone stays frozen; only the head trains, on stored features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graft.strategies.base import STRATEGIES, Plan, Strategy


@STRATEGIES.register("feature_extraction")
@dataclass(frozen=True, kw_only=True)
class FeatureExtraction(Strategy):
    """Train a new head on the frozen backbone's features (computed once, kept on disk).

    The right choice for small datasets close to the backbone's source domain, and the
    cheapest: every epoch after the first pass reads stored features.
    """

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        n = len(groups) - 1
        stage = self.stage("head", epochs, lr, (*([0.0] * n), 1.0))
        return Plan("feature_extraction", tuple(groups), (stage,))
