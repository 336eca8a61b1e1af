"""Two-stage fine-tuning: the head first on a frozen backbone, then the top groups, slower."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graft.strategies.base import STRATEGIES, Plan, Strategy
from graft.strategies.fine_tune import resolve_top


@STRATEGIES.register("two_stage")
@dataclass(frozen=True, kw_only=True)
class TwoStage(Strategy):
    """Head first (backbone frozen, BatchNorm in inference mode), then unfreeze and fine-tune.

    Training the head first keeps the large gradients of a random head from wrecking the
    pretrained features (Kumar et al., "Fine-Tuning can Distort Pretrained Features and
    Underperform Out-of-Distribution", ICLR 2022: linear probing then fine-tuning).

    Args:
        top: backbone groups unfrozen in the second stage (None = all).
        fraction: alternatively, a fraction of the backbone's groups.
        lr_factor: second-stage rate as a fraction of the first (0.01–0.1: 10–100x smaller).
        head_epochs: epochs of the first stage (default: the run's ``epochs``).
    """

    top: int | None = 2
    fraction: float | None = None
    lr_factor: float = 0.1
    head_epochs: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.lr_factor < 1:
            raise ValueError(f"lr_factor must be in (0, 1), got {self.lr_factor}")

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        n = len(groups) - 1
        k = resolve_top(n, None if self.fraction is not None else self.top, self.fraction)
        head_epochs = epochs if self.head_epochs is None else self.head_epochs
        head = self.stage("head", head_epochs, lr, (*([0.0] * n), 1.0))
        tune = self.stage(f"top-{k}", epochs, lr * self.lr_factor, self.depth_multipliers(n, k))
        return Plan("two_stage", tuple(groups), (head, tune))
