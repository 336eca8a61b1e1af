"""Contract test: every registered extension runs end to end through the one training loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from graft.adapt import ADAPTERS
from graft.data import load as load_data
from graft.model import GraftModel
from graft.protect import REGULARIZERS
from graft.testing import tiny_backbone
from graft.training.extensions import Extension, ExtensionBase
from graft.training.loop import train
from graft.workflows.extensions import finish_extensions, setup_extensions
from graft.workflows.fit import make_plan, task_spec_for, train_config

CASES = [("protect", n) for n in REGULARIZERS.names()] + [("adapt", n) for n in ADAPTERS.names()]


def _request(kind: str, name: str, digits_dir: Path) -> dict[str, dict[str, Any]]:
    if kind == "protect":
        return {"protect": {"regularize": name}, "adapt": {}}
    return {
        "protect": {"retention": False},
        "adapt": {"unlabeled": digits_dir / "1", "adapt": name},
    }


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_every_registered_extension_runs_through_the_loop(
    kind: str, name: str, digits_dir: Path
) -> None:
    data = load_data(digits_dir)
    torch.manual_seed(0)
    model = GraftModel(tiny_backbone(image_size=32), task_spec_for(data))
    plan = make_plan(model, "two_stage", epochs=1, lr=1e-3)
    cfg = train_config(batch_size=32, progress=False)
    plan, extensions = setup_extensions(
        model,
        plan,
        data,
        cfg,
        dry_run=False,
        log=lambda s: None,
        **_request(kind, name, digits_dir),
    )
    assert extensions and all(isinstance(e, Extension) for e in extensions)
    history = train(model, plan, data, cfg, log=lambda s: None, extensions=extensions)
    loss_name = name if kind == "protect" else "adapt"
    losses = [row.get(f"train_{loss_name}_loss") for row in history]
    if name == "rotation":  # a pretext stage of the loop, before the supervised stages
        assert history[0]["kind"] == "pretext" and 0.0 <= history[0]["train_adapt_acc"] <= 1.0
        stages = [r["stage"] for r in history]  # the head stage: its linear start, one epoch
        assert stages == ["rotation", "head", "head", "top-2"], stages
        assert all(v is None for v in losses)
    else:  # head stage on stored features: no term; the fine-tuning stage: the term's loss
        assert losses[0] is None and losses[-1] is not None and losses[-1] == losses[-1]
    records = finish_extensions(extensions, model, data, cfg)
    assert set(records) == {e.name for e in extensions}
    json.dumps(records)  # JSON-ready for the run record
    for ext in extensions:  # checkpoint state round-trips
        ext.load_state_dict(ext.state_dict())
    if kind == "protect":
        assert records[name]["name"] == name and "top1_agreement" in records["retention"]
    else:
        assert records["adapt"]["method"] == name and records["adapt"]["n_unlabeled"] > 0
    if name == "rotation":
        assert [r["epoch"] for r in records["adapt"]["rotation"]["history"]] == [1]


def test_an_inactive_extension_adds_no_loss_but_sees_every_epoch(digits_dir: Path) -> None:
    class Counter(ExtensionBase):
        name = "counter"

        def __init__(self) -> None:
            self.rows: list[int] = []

        def on_epoch(self, row: dict[str, Any]) -> None:
            self.rows.append(int(row["epoch"]))

    data = load_data(digits_dir)
    model = GraftModel(tiny_backbone(image_size=32), task_spec_for(data))
    plan = make_plan(model, "full", epochs=2, lr=1e-3)
    counter = Counter()
    history = train(
        model, plan, data, train_config(progress=False), log=lambda s: None, extensions=[counter]
    )
    assert counter.rows == [1, 2] and not any("train_counter_loss" in r for r in history)
