"""Learning-rate schedules: warm-up then decay, one-cycle, plateau; every entry builds."""

from __future__ import annotations

import pytest
import torch

from graft.errors import ConfigError
from graft.training.schedules import SCHEDULES, ScheduleConfig, build_scheduler, check_schedule


def _lrs(cfg: ScheduleConfig, steps: int = 10) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, steps, cfg)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(0.0) if cfg.per_epoch else sched.step()
    return out


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_builds_and_stays_positive(name: str) -> None:
    lrs = _lrs(ScheduleConfig(name=name))
    assert all(lr >= 0 for lr in lrs) and max(lrs) <= 1.0 + 1e-9


def test_warmup_then_cosine_reference_values() -> None:
    lrs = _lrs(ScheduleConfig(name="cosine", warmup=0.2), steps=10)
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)  # 2 warm-up steps
    assert lrs[-1] < 0.05 and lrs == [*lrs[:2], *sorted(lrs[2:], reverse=True)]


def test_linear_decay_with_floor() -> None:
    lrs = _lrs(ScheduleConfig(name="linear", min_lr_ratio=0.5), steps=5)
    assert lrs == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6])


def test_one_cycle_rises_then_falls() -> None:
    lrs = _lrs(ScheduleConfig(name="one_cycle"), steps=20)
    peak = lrs.index(max(lrs))
    assert 0 < peak < 19 and lrs[0] < max(lrs) and lrs[-1] < lrs[0]


def test_plateau_reduces_when_stalled() -> None:
    lrs = _lrs(ScheduleConfig(name="plateau", plateau_patience=1, plateau_factor=0.5), steps=4)
    assert lrs[-1] < lrs[0]


def test_bad_schedule_options() -> None:
    with pytest.raises(ConfigError, match="cosine"):  # checked where the registry lives
        check_schedule(ScheduleConfig(name="cosin"))
    with pytest.raises(ConfigError, match="warmup"):
        ScheduleConfig(warmup=0.9)
