"""Learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

The rate grows exponentially from ``start_lr`` to ``end_lr`` over a number of steps of one stage
of the plan (the first, by default: the head on stored features for most strategies), run by
the one training loop (:func:`graft.training.loop.train`, so Accelerate's device and
precision apply) with the ``exponential`` schedule and a step hook; the loss is smoothed, the
test stops when it diverges, and the suggestion is the rate where the loss falls fastest.
Weights are restored afterwards: the test trains nothing for good.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from graft.config import ScheduleConfig, TrainConfig
from graft.data.base import Dataset
from graft.model import GraftModel
from graft.strategies.base import Plan
from graft.training.loop import train


@dataclass
class LRFindResult:
    """Rates tried, smoothed losses, and the suggested rate."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    suggestion: float = float("nan")

    def plot(self, path: str | Path) -> Path:
        """Loss against rate (log scale) with the suggestion marked, as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from graft.io import atomic_write_bytes

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses)
        ax.axvline(
            self.suggestion,
            color="tab:red",
            linestyle="--",
            label=f"suggested {self.suggestion:.1e}",
        )
        ax.set(
            xscale="log",
            xlabel="learning rate",
            ylabel="loss (smoothed)",
            title="learning-rate range test",
        )
        ax.legend()
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return atomic_write_bytes(path, buf.getvalue())


class RangeProbe:
    """The step hook of the range test: records each step's rate and smoothed loss, and stops.

    Stops after ``steps`` steps, or when the smoothed loss is not finite or exceeds four times
    the best so far (the loss diverges).
    """

    def __init__(self, start_lr: float, growth: float, steps: int, smoothing: float) -> None:
        self.start_lr, self.growth, self.steps, self.smoothing = start_lr, growth, steps, smoothing
        self.result, self._avg, self._best = LRFindResult(), 0.0, math.inf

    def __call__(self, step: int, loss: float) -> bool:
        """Record ``step``; True ends the test (before that step's update)."""
        if step >= self.steps:
            return True
        self._avg = self.smoothing * loss + (1 - self.smoothing) * self._avg  # starts at 0:
        debiased = self._avg / (1 - (1 - self.smoothing) ** (step + 1))  # debiased
        self.result.lrs.append(self.start_lr * self.growth**step)
        self.result.losses.append(debiased)
        self._best = min(self._best, debiased)
        return not math.isfinite(debiased) or debiased > 4 * self._best


def lr_find(
    model: GraftModel,
    plan: Plan,
    data: Dataset,
    cfg: TrainConfig,
    *,
    stage_index: int = 0,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.05,
) -> LRFindResult:
    """Run the range test on one stage of ``plan`` in the training loop; weights are restored.

    The stage runs alone at ``start_lr`` with the ``exponential`` schedule (the rate grows by
    ``(end_lr / start_lr) ** (1 / (steps - 1))`` every step) until :class:`RangeProbe` stops
    it; no checkpoint, log file or early stopping.
    """
    growth = (end_lr / start_lr) ** (1 / max(1, steps - 1))
    stage = replace(plan.stages[stage_index], lr=start_lr, epochs=steps, patience=None)
    probe = RangeProbe(start_lr, growth, steps, smoothing)
    run_cfg = replace(
        cfg, schedule=ScheduleConfig(name="exponential", growth=growth), checkpoint_dir=None,
        resume=False, log_csv=None, tensorboard=None, progress=False, linear_start=False,
    )  # fmt: skip
    saved = copy.deepcopy(model.state_dict())
    try:
        train(model, replace(plan, stages=(stage,)), data, run_cfg, log=_quiet, step_hooks=[probe])
    finally:
        model.load_state_dict(saved)
    result = probe.result
    result.suggestion = suggest(result.lrs, result.losses)
    return result


def _quiet(message: str) -> None:
    del message


def suggest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the smoothed loss falls fastest (steepest negative slope in log-rate)."""
    finite = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    if len(finite) < 3:
        return lrs[0] if lrs else float("nan")
    lr_arr = np.log10([p[0] for p in finite])
    loss_arr = np.array([p[1] for p in finite])
    stop = int(np.argmin(loss_arr)) + 1  # only look before the minimum
    if stop < 3:
        return float(10 ** lr_arr[0])
    slope = np.gradient(loss_arr[:stop], lr_arr[:stop])
    return float(10 ** lr_arr[int(np.argmin(slope))])
