"""The plan's result is its best stage: a later stage that gets worse is undone, and logged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import graft
from graft.strategies.base import Plan
from graft.strategies.two_stage import TwoStage
from graft.testing import tiny_backbone


class _Wrecking(TwoStage):
    """Two-stage with a second stage at 10,000x the rate: designed to get worse."""

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        head, tune = super().plan(groups, epochs=epochs, lr=lr).stages
        return Plan("two_stage", tuple(groups), (head, replace(tune, lr=lr * 1e4)))


def _fit(digits_dir: Path, tmp_path: Path, lines: list[str], **kw: object) -> graft.GraftModel:
    options: dict[str, object] = {"epochs": 3, "lr": 1e-2, **kw}
    return graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), batch_size=16, seed=0,
        progress=False, retention=False, cache_dir=str(tmp_path / "cache"), log=lines.append,
        **options,
    )  # fmt: skip


def test_a_stage_that_gets_worse_leaves_the_earlier_weights(
    digits_dir: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    model = _fit(digits_dir, tmp_path, lines, strategy=_Wrecking(top=None))
    history = model.record.history
    head = [r for r in history if r["stage"] == "head"]
    tuned = [r for r in history if r["stage"] != "head"]
    best_head = min(r["val_loss"] for r in head)
    assert min(r["val_loss"] for r in tuned) > best_head, "the designed stage is worse"
    assert any(
        "did not beat stage head" in line and "keeping the weights" in line for line in lines
    )
    assert all(r.get("kept") is False for r in tuned)
    best_row = min(head, key=lambda r: r["val_loss"])
    scores = model.evaluate(digits_dir, split="val")
    assert abs(scores["accuracy"] - best_row["val_accuracy"]) < 1e-6, "the head stage's best"


def test_a_stage_that_improves_is_kept(digits_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    model = _fit(
        digits_dir, tmp_path, lines, strategy=TwoStage(top=None, lr_factor=0.3), epochs=6,
        lr=3e-3, linear_start=False,  # a head by a few epochs, which fine-tuning improves on
    )  # fmt: skip
    history = model.record.history
    best_row = min(history, key=lambda r: r["val_loss"])
    assert best_row["stage"] != "head", "fine-tuning improves on the head stage here"
    assert not any("did not beat" in line for line in lines)
    final = model.evaluate(digits_dir, split="val")["accuracy"]
    assert abs(final - best_row["val_accuracy"]) < 1e-6, "the model is the best epoch overall"


def test_a_stage_that_lowers_the_loss_but_loses_accuracy_is_undone(digits_dir: Path) -> None:
    """Constructed rows: the fine-tuning stage's best epoch has a lower validation loss than
    the head's but a lower accuracy; the head's weights come back, and the log says why."""
    import torch

    from graft.data import load
    from graft.model import GraftModel
    from graft.strategies.base import Stage
    from graft.training.loop import TrainConfig, _PlanBest
    from graft.workflows.fit import task_spec_for

    model = GraftModel(tiny_backbone(image_size=32), task_spec_for(load(digits_dir, seed=0)))
    keeper = _PlanBest(model, TrainConfig(progress=False), [])
    lines: list[str] = []
    n = len(model.backbone.groups)
    head = Stage("head", 1, 1e-3, (*([0.0] * n), 1.0))
    tune = Stage("tune", 1, 1e-4, (1.0,) * (n + 1))
    keeper.end_stage(
        head, [{"stage": "head", "val_loss": 0.50, "val_accuracy": 0.80}], lines.append, True
    )
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    rows = [
        {"stage": "tune", "val_loss": 0.45, "val_accuracy": 0.70},  # lower loss, lower accuracy
        {"stage": "tune", "val_loss": 0.60, "val_accuracy": 0.85},
    ]
    keeper.end_stage(tune, rows, lines.append, True)
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())
    assert all(r["kept"] is False for r in rows)
    assert lines == [
        "  stage tune lowered the loss but not accuracy (0.7000 vs 0.8000): "
        "keeping the weights of stage head"
    ]
    # Lower loss and accuracy at least as high: kept.
    better = [{"stage": "tune", "val_loss": 0.40, "val_accuracy": 0.80}]
    keeper.end_stage(tune, better, lines.append, True)
    assert "kept" not in better[0] and len(lines) == 1 and keeper.stage_name == "tune"
