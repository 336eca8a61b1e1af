"""Checkpoints round-trip nested optimizer states without pickle."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.errors import ArtifactError
from graft.training.checkpoint import TENSORS, load_checkpoint, read_state, save_checkpoint


def test_optimizer_state_round_trip(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "best": float("inf"),
        "rows": [{"a": 1.5}],
        "t": (1, 2),
    }
    save_checkpoint(tmp_path / "ck", state)
    back = load_checkpoint(tmp_path / "ck")
    assert back["epoch"] == 3 and back["best"] == float("inf") and back["t"] == (1, 2)
    opt2 = torch.optim.AdamW(model.parameters(), lr=0.1)
    opt2.load_state_dict(back["optimizer"])
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )
    assert torch.equal(back["model"]["weight"], model.weight)
    (tmp_path / "ck" / TENSORS).unlink()  # a watcher reads the values without the tensors
    values = read_state(tmp_path / "ck")
    assert values["epoch"] == 3 and values["rows"] == [{"a": 1.5}] and values["t"] == (1, 2)
    assert values["model"] == {"weight": None, "bias": None}


def test_damaged_or_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")
    save_checkpoint(tmp_path / "ck", {"x": torch.ones(2)})
    (tmp_path / "ck" / "state.json").write_text("{")
    with pytest.raises(ArtifactError, match="damaged"):
        load_checkpoint(tmp_path / "ck")
