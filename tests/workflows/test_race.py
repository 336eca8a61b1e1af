"""``--strategy auto``'s race: a small network from scratch when the features are not clearly
ahead of the raw input, kept only when it validates better."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

import graft
from graft.config import FitConfig
from graft.strategies.auto import Facts, decide
from graft.testing import tiny_backbone
from graft.workflows.fit import load_data_for, race_scratch

QUIET: dict[str, Any] = {"progress": False, "log": lambda s: None}


def _advised(digits_dir: Path, *, probe: float, pixel_probe: float, val: float) -> Any:
    """A fitted model carrying constructed advice facts and a constructed val accuracy."""
    model = graft.fit(
        digits_dir, backbone=tiny_backbone(), strategy="feature_extraction", epochs=1, **QUIET
    )
    facts = Facts(
        task="classification", n_train=100, n_outputs=10, probe=probe, pixel_probe=pixel_probe,
        probe_noise=0.02, pixel_size=16, pretrained=True,
    )  # fmt: skip
    model.info["advice"] = asdict(decide(facts)) | {"lines": ["advice: ..."]}
    model.info["metrics"]["val"]["accuracy"] = val
    return model


def _cfg(**overrides: Any) -> FitConfig:
    return FitConfig.create(epochs=2, total_epochs=3, batch_size=16, **overrides)


def test_scratch_is_trained_and_kept_when_it_validates_better(digits_dir: Path) -> None:
    model = _advised(digits_dir, probe=0.6, pixel_probe=0.62, val=0.0)
    cfg = _cfg()
    lines: list[str] = []
    won = race_scratch(model, load_data_for(digits_dir, cfg), cfg, log=lines.append)
    assert won is not model and won.backbone.spec.name == "small_cnn"
    assert not won.backbone.spec.pretrained
    race = won.info["advice"]["race"]
    assert race["kept"] == "scratch" and race["epochs"] == 3 and race["transfer"] == 0.0
    assert race["scratch"] == won.info["metrics"]["val"]["accuracy"] > 0.0
    assert 0 < race["scratch_seconds"] == won.info["seconds"]  # the scratch fit's own time
    assert any("keeping small_cnn" in line for line in lines)
    assert won.info["advice"]["lines"][-1].strip().startswith("race: val accuracy")


def test_race_image_size_sets_the_small_networks_side(digits_dir: Path) -> None:
    """``--race-image-size`` (the demo races its small CNN at 16 px, as its comparison does)."""
    model = _advised(digits_dir, probe=0.6, pixel_probe=0.62, val=0.0)
    cfg = _cfg(race_image_size=16)
    lines: list[str] = []
    won = race_scratch(model, load_data_for(digits_dir, cfg), cfg, log=lines.append)
    assert won.backbone.spec.name == "small_cnn" and won.data_config.image_size == 16
    assert any("(3 epochs, 16 px)" in line for line in lines), lines


def test_a_race_image_size_below_8_px_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from graft.cli import main
    from graft.errors import ConfigError

    with pytest.raises(ConfigError, match="--race-image-size must be >= 8, got 4"):
        FitConfig.create(race_image_size=4)
    assert main(["fit", "data", "--race-image-size", "4"]) == 2
    assert "--race-image-size must be >= 8, got 4" in capsys.readouterr().err


def test_the_pretrained_model_stays_when_it_validates_better(digits_dir: Path) -> None:
    model = _advised(digits_dir, probe=0.6, pixel_probe=0.62, val=1.0)
    cfg = _cfg()
    won = race_scratch(model, load_data_for(digits_dir, cfg), cfg, log=lambda s: None)
    assert won is model and won.info["advice"]["race"]["kept"] == "transfer"


@pytest.mark.parametrize(
    ("probe", "options"),
    [
        (0.9, {}),  # the features win beyond noise: nothing to race
        (0.6, {"race_scratch": False}),  # --no-race-scratch
        (0.6, {"regularize": "l2sp"}),  # a regularizer needs the pretrained source
    ],
)
def test_no_race(digits_dir: Path, probe: float, options: dict[str, Any]) -> None:
    model = _advised(digits_dir, probe=probe, pixel_probe=0.62, val=0.0)
    cfg = _cfg(**options)
    won = race_scratch(model, load_data_for(digits_dir, cfg), cfg, log=lambda s: None)
    assert won is model and "race" not in won.info["advice"]


def test_the_flag_is_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from graft.cli import main

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "--no-race-scratch" in capsys.readouterr().out
    assert FitConfig.create(race_scratch=False).tuning.race_scratch is False


def test_compare_counts_a_race_won_by_scratch_as_scratch(digits_dir: Path) -> None:
    """``graft compare``'s verdict weighs transfer against scratch: auto's row follows the race."""
    from graft.evaluate.arms import ARMS
    from graft.evaluate.compare import arm_row

    model = _advised(digits_dir, probe=0.6, pixel_probe=0.62, val=0.5)
    model.info["history"] = []
    assert arm_row("auto", ARMS.get("auto"), model, "classification")["kind"] == "transfer"
    model.info["advice"]["race"] = {"kept": "scratch", "network": "small_cnn"}
    assert arm_row("auto", ARMS.get("auto"), model, "classification")["kind"] == "scratch"
    # The race's winner reused as the small_cnn arm (the demo) shows its own fit's time.
    model.info["seconds"] = 140.0
    model.info["advice"]["race"]["scratch_seconds"] = 30.0
    assert arm_row("auto", ARMS.get("auto"), model, "classification")["time (s)"] == 140.0
    assert arm_row("small_cnn", ARMS.get("small_cnn"), model, "classification")["time (s)"] == 30.0
