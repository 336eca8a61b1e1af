"""Learning-rate schedules per stage: warm-up then cosine or linear decay, one-cycle, plateau.

``exponential`` (API only) multiplies the rate by ``growth`` every step: the range test's.

Each schedule is built fresh for every stage (a stage has its own optimizer), from the number
of optimizer steps in the stage. ``plateau`` steps once per epoch on the monitored metric;
the others step after every optimizer step.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from graft._registry import Registry
from graft.config import ScheduleConfig
from graft.errors import ConfigError

SCHEDULES: Registry[Any] = Registry("schedule")


def check_schedule(config: ScheduleConfig) -> None:
    """Raise ConfigError when the schedule's name is not registered (names close ones)."""
    if SCHEDULES.normalize(config.name) not in SCHEDULES:
        raise ConfigError(
            SCHEDULES.unknown_message(config.name).replace("unknown", "--schedule: unknown")
        )


def _warmup_then(decay: str, total: int, warmup: int, floor: float) -> Any:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if decay == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        if decay == "linear":
            return floor + (1 - floor) * (1 - progress)
        return 1.0

    return factor


@SCHEDULES.register("cosine")
def cosine(opt: torch.optim.Optimizer, total: int, cfg: ScheduleConfig) -> Any:
    warm = int(cfg.warmup * total)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, _warmup_then("cosine", total, warm, cfg.min_lr_ratio)
    )


@SCHEDULES.register("linear")
def linear(opt: torch.optim.Optimizer, total: int, cfg: ScheduleConfig) -> Any:
    warm = int(cfg.warmup * total)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, _warmup_then("linear", total, warm, cfg.min_lr_ratio)
    )


@SCHEDULES.register("constant")
def constant(opt: torch.optim.Optimizer, total: int, cfg: ScheduleConfig) -> Any:
    warm = int(cfg.warmup * total)
    return torch.optim.lr_scheduler.LambdaLR(opt, _warmup_then("constant", total, warm, 1.0))


@SCHEDULES.register("one_cycle")
def one_cycle(opt: torch.optim.Optimizer, total: int, cfg: ScheduleConfig) -> Any:
    """Smith & Topin, "Super-Convergence", 2019: up to the stage rate, then far below it."""
    max_lrs = [g["lr"] for g in opt.param_groups]
    pct = cfg.warmup if cfg.warmup > 0 else 0.3
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lrs, total_steps=max(total, 2), pct_start=pct
    )


@SCHEDULES.register("plateau")
def plateau(opt: torch.optim.Optimizer, total: int, cfg: ScheduleConfig) -> Any:
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
    )


@SCHEDULES.register("exponential")
def exponential(opt: torch.optim.Optimizer, total: int, cfg: ScheduleConfig) -> Any:
    """The stage rate times ``cfg.growth ** step``: the learning-rate range test's sweep."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cfg.growth**step)


def build_scheduler(opt: torch.optim.Optimizer, total_steps: int, cfg: ScheduleConfig) -> Any:
    """A fresh scheduler for one stage of ``total_steps`` optimizer steps."""
    return SCHEDULES.get(cfg.name)(opt, max(1, total_steps), cfg)
