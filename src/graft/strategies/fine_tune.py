"""Fine-tune the top layer groups (or a fraction of the network), or everything."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from graft.strategies.base import STRATEGIES, Plan, Strategy


def resolve_top(n_backbone: int, top: int | None, fraction: float | None) -> int:
    """How many backbone groups to unfreeze, from a count or a fraction of the groups."""
    if top is not None and fraction is not None:
        raise ValueError("give either top or fraction, not both")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        return max(1, math.ceil(fraction * n_backbone))
    if top is None:
        return n_backbone
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    return min(top, n_backbone)


@STRATEGIES.register("fine_tune_top")
@dataclass(frozen=True, kw_only=True)
class FineTuneTop(Strategy):
    """Train the head and the top ``top`` layer groups (or ``fraction`` of them) together.

    Args:
        top: number of backbone layer groups to unfreeze, counted from the head.
        fraction: alternatively, a fraction of the backbone's groups.
    """

    top: int | None = 2
    fraction: float | None = None

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        n = len(groups) - 1
        k = resolve_top(n, None if self.fraction is not None else self.top, self.fraction)
        stage = self.stage(f"top-{k}", epochs, lr, self.depth_multipliers(n, k))
        return Plan("fine_tune_top", tuple(groups), (stage,))


@STRATEGIES.register("full")
@dataclass(frozen=True, kw_only=True)
class Full(Strategy):
    """Train every layer group at a small learning rate (``lr * lr_factor``)."""

    lr_factor: float = 0.1

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        n = len(groups) - 1
        stage = self.stage("full", epochs, lr * self.lr_factor, self.depth_multipliers(n, n))
        return Plan("full", tuple(groups), (stage,))
