"""Learning-rate range test: reference suggestion on a synthetic curve, end to end on digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graft.cli import main
from graft.data import load as load_data
from graft.model import GraftModel
from graft.testing import tiny_backbone
from graft.training.loop import train
from graft.training.lr_find import RangeProbe, suggest
from graft.workflows.fit import lr_find, make_plan, task_spec_for, train_config


def test_suggestion_is_the_steepest_descent_before_the_minimum() -> None:
    lrs = list(np.logspace(-6, 0, 61))
    x = np.log10(lrs)
    losses = list(2.0 - np.tanh(2 * (x + 3)) + np.where(x > -1, 10 * (x + 1) ** 2, 0))
    assert suggest(lrs, losses) == pytest.approx(1e-3, rel=0.3)


def test_lr_find_leaves_weights_unchanged_and_plots(digits_dir: Path, tmp_path: Path) -> None:
    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    result = lr_find(digits_dir, backbone=backbone, strategy="feature_extraction", steps=30,
                     plot=tmp_path / "lr.png", progress=False)  # fmt: skip
    assert len(result.lrs) == len(result.losses) > 5
    assert result.lrs[0] < result.suggestion < result.lrs[-1]
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_lr_find_cli(digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "p.png"
    code = main(["lr-find", str(digits_dir), "--image-size", "32", "--strategy", "feature-extraction",
                 "--steps", "20", "--plot", str(plot)])  # fmt: skip
    assert code == 0 and plot.exists()
    assert "suggested learning rate" in capsys.readouterr().out


def test_range_probe_records_the_sweep_and_stops_when_the_loss_diverges() -> None:
    probe = RangeProbe(1e-3, 10.0, steps=50, smoothing=1.0)  # smoothing 1: the raw loss
    answers = [probe(i, loss) for i, loss in enumerate([1.0, 0.5, 0.4, 1.7])]
    assert answers == [False, False, False, True], "1.7 > 4 x the best (0.4)"
    assert probe.result.lrs == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])
    assert probe.result.losses == pytest.approx([1.0, 0.5, 0.4, 1.7])
    assert probe(50, 0.1) is True, "past its steps"
    assert RangeProbe(1e-3, 2.0, steps=9, smoothing=0.5)(0, float("nan")) is True


def test_a_step_hook_ends_the_run_of_the_one_loop(digits_dir: Path) -> None:
    data = load_data(digits_dir)
    model = GraftModel(tiny_backbone(image_size=32), task_spec_for(data))
    plan = make_plan(model, "two_stage", epochs=2, lr=1e-3)
    cfg = train_config(batch_size=32, progress=False, schedule="exponential", growth=1.5)
    assert cfg.schedule.growth == 1.5
    seen: list[tuple[int, float]] = []

    def hook(step: int, loss: float) -> bool:
        seen.append((step, loss))
        return step == 9  # the head stage runs fewer steps: this one is inside stage 2

    history = train(model, plan, data, cfg, log=lambda s: None, step_hooks=[hook])
    assert [s for s, _ in seen] == list(range(10)), "steps counted across stages, then stopped"
    assert all(loss == loss for _, loss in seen)
    assert {r["stage"] for r in history} == {"head"}, "the second stage ended before its epoch"
