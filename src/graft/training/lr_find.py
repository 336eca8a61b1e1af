"""Learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

The rate grows exponentially from ``start_lr`` to ``end_lr`` over a number of steps of one stage
of the plan (the first, by default: the head on stored features for most strategies); the loss
is smoothed, the test stops when it diverges, and the suggestion is the rate where the loss
falls fastest. Weights are restored afterwards: the test trains nothing for good.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.data.base import Dataset
from graft.model import GraftModel
from graft.strategies.base import Plan
from graft.training.params import apply_trainable, freeze_batchnorm, param_groups


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


def lr_find(
    model: GraftModel,
    plan: Plan,
    data: Dataset,
    cfg: Any,
    *,
    stage_index: int = 0,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.05,
) -> LRFindResult:
    """Run the range test on one stage of ``plan``; the model's weights are left unchanged."""
    from graft.training.loaders import feature_loaders, image_loaders
    from graft.training.loop import make_accelerator

    stage = plan.stages[stage_index]
    saved = copy.deepcopy(model.state_dict())
    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    apply_trainable(model, stage)
    on_features = cfg.use_cache and stage.backbone_frozen
    gen = torch.Generator().manual_seed(cfg.seed)
    loaders = (
        feature_loaders(model, data, cfg, accelerator, gen)
        if on_features
        else image_loaders(model, data, cfg, gen)
    )
    module = model.head if on_features else model
    optimizer = torch.optim.AdamW(param_groups(model, stage, weight_decay=cfg.weight_decay))
    base = [g["lr"] for g in optimizer.param_groups]
    gamma = (end_lr / start_lr) ** (1 / max(1, steps - 1))
    result, avg, best = LRFindResult(), 0.0, math.inf
    module.train()
    freeze_batchnorm(model, stage)
    step = 0
    while step < steps:
        for x, y in loaders[0]:
            x, y = x.to(accelerator.device), y.to(accelerator.device)
            factor = start_lr * gamma**step / stage.lr
            for g, b in zip(optimizer.param_groups, base, strict=True):
                g["lr"] = b * factor
            loss = model.task.loss(module(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            avg = smoothing * loss.item() + (1 - smoothing) * avg  # debiased below (starts at 0)
            debiased = avg / (1 - (1 - smoothing) ** (step + 1))
            result.lrs.append(start_lr * gamma**step)
            result.losses.append(debiased)
            best = min(best, debiased)
            step += 1
            if step >= steps or not math.isfinite(debiased) or debiased > 4 * best:
                step = steps
                break
    model.load_state_dict(saved)
    result.suggestion = suggest(result.lrs, result.losses)
    return result


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
