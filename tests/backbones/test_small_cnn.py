"""The small CNN trained from scratch: a real Backbone that plans, trains, saves and loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import graft
from graft.backbones import from_spec
from graft.backbones.small_cnn import SMALL_CNNS
from graft.errors import BackboneError
from graft.model import GraftModel
from graft.strategies.base import STRATEGIES, create_strategy


@pytest.mark.parametrize("name", sorted(SMALL_CNNS))
def test_backbone_contract(name: str) -> None:
    bb = graft.backbone(name, pretrained=False)
    channels = SMALL_CNNS[name]["in_chans"]
    assert bb.data_config.input_size == (channels, 32, 32)
    assert len(bb.data_config.mean) == channels
    assert bb.spec.source == "random" and bb.spec.name == name
    assert bb.group_names[0] == "stem" and len(bb.group_names) == 1 + len(
        SMALL_CNNS[name]["widths"]
    )
    assert any(isinstance(m, nn.BatchNorm2d) for m in bb.modules())
    grouped = [n for g in bb.groups for n in g.param_names]
    assert sorted(grouped) == sorted(n for n, _ in bb.model.named_parameters())
    assert bb.source_head is None
    with torch.no_grad():
        assert bb(torch.randn(2, channels, 20, 20)).shape == (2, bb.num_features)


def test_pretrained_is_a_clear_error() -> None:
    with pytest.raises(BackboneError, match=r"no pretrained weights.*--no-pretrained"):
        graft.backbone("small_cnn")


def test_image_size_and_rebuild_from_spec() -> None:
    bb = graft.backbone("small_cnn", pretrained=False, image_size=24)
    assert bb.data_config.image_size == 24
    rebuilt = from_spec(bb.spec, load_weights=False)
    assert rebuilt.group_names == bb.group_names
    assert set(rebuilt.state_dict()) == set(bb.state_dict())


@pytest.mark.parametrize("strategy", [name for name, _ in STRATEGIES.items()])
def test_every_strategy_plans_over_it(strategy: str) -> None:
    bb = graft.backbone("small_cnn", pretrained=False)
    groups = [*bb.group_names, "head"]
    plan = create_strategy(strategy).plan(groups, epochs=1, lr=1e-3)
    assert plan.stages
    assert all(len(s.multipliers) == len(groups) for s in plan.stages)


def test_trains_from_scratch_and_round_trips(digits_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cnn"
    model = graft.fit(
        digits_dir,
        backbone="small_cnn_gray",
        pretrained=False,
        strategy="full",
        epochs=2,
        lr=3e-3,
        batch_size=32,
        progress=False,
        out=out,
        log=lambda s: None,
    )
    assert isinstance(model, GraftModel)
    losses = [row["train_loss"] for row in model.info["history"]]
    assert losses[-1] < losses[0]
    loaded = graft.load(out)
    assert loaded.backbone.spec == model.backbone.spec
    files = sorted((digits_dir / "7").iterdir())[:4]
    np.testing.assert_allclose(
        model.predict_outputs(files), loaded.predict_outputs(files), rtol=1e-5, atol=1e-6
    )
