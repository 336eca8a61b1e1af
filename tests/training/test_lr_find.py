"""Learning-rate range test: reference suggestion on a synthetic curve, end to end on digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graft.cli import main
from graft.testing import tiny_backbone
from graft.training.lr_find import suggest
from graft.workflows.fit import lr_find


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
