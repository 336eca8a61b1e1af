"""Progressive (gradual) unfreezing from the top down, one more group per stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graft.strategies.base import STRATEGIES, Plan, Stage, Strategy


@STRATEGIES.register("progressive")
@dataclass(frozen=True, kw_only=True)
class Progressive(Strategy):
    """Gradual unfreezing: the head, then one more group per stage, at a decreasing rate.

    As in ULMFiT (Howard & Ruder, "Universal Language Model Fine-tuning for Text
    Classification", ACL 2018): stage ``s`` trains the head and the top ``s`` groups at
    ``lr * lr_decay ** s``.

    Args:
        max_groups: stop after unfreezing this many backbone groups (None = all).
        lr_decay: rate factor from one stage to the next.
        stage_epochs: epochs per stage (default: the run's ``epochs``).
    """

    max_groups: int | None = None
    lr_decay: float = 0.5
    stage_epochs: int | None = None
    layer_decay: float = 0.8

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        n = len(groups) - 1
        last = n if self.max_groups is None else min(self.max_groups, n)
        per = epochs if self.stage_epochs is None else self.stage_epochs
        stages: list[Stage] = [self.stage("head", per, lr, (*([0.0] * n), 1.0))]
        for s in range(1, last + 1):
            stage_lr = lr * self.lr_decay**s
            stages.append(self.stage(f"unfreeze-{s}", per, stage_lr, self.depth_multipliers(n, s)))
        return Plan("progressive", tuple(groups), tuple(stages))
