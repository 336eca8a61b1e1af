"""A model given to ``graft.compare`` stands in for an arm only when it was trained as that arm
would be; the race's small CNN, as ``graft demo`` hands it over, is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import graft
from graft.data import load
from graft.evaluate.compare import REUSED_AS
from graft.workflows.fit import race_scratch, resolve_config

#: The comparison's budget in these tests, and the small CNN's side.
BUDGET: dict[str, Any] = {"epochs": 2, "lr": 1e-3, "batch_size": 64, "small_cnn_size": 16}


def _compare(data: Any, fitted: dict[str, Any], tmp_path: Path, lines: list[str]) -> Any:
    return graft.compare(
        data, arms=["small_cnn"], baseline=False, fractions=[], cache_dir=str(tmp_path),
        fitted=fitted, log=lines.append, **BUDGET,
    )  # fmt: skip


def _small_cnn(data: Any, tmp_path: Path, **changes: Any) -> Any:
    options = {
        "backbone": "small_cnn", "pretrained": False, "image_size": 16, "strategy": "full",
        "lr_factor": 1.0, "epochs": 2, "lr": 1e-3, "batch_size": 64, "seed": 0,
    }  # fmt: skip
    return graft.fit(data, cache_dir=str(tmp_path), progress=False, log=lambda _: None,
                     **options | changes)  # fmt: skip


def test_a_given_arm_is_reused_only_when_trained_as_the_arm(
    small_digits: Path, tmp_path: Path
) -> None:
    data = load(small_digits)
    same = _small_cnn(data, tmp_path)
    lines: list[str] = []
    assert _compare(data, {"small_cnn": same}, tmp_path, lines).models["small_cnn"] is same
    assert not any("trained anew" in line for line in lines)
    for changes, said in (({"lr": 3e-3}, "lr 0.003, the arm's 0.001"), ({"seed": 1}, "seed 1")):
        other = _small_cnn(data, tmp_path, **changes)
        lines.clear()
        result = _compare(data, {"small_cnn": other}, tmp_path, lines)
        assert result.models["small_cnn"] is not other
        (line,) = [x for x in lines if "trained anew" in x]
        assert (
            line.startswith("arm small_cnn: the model given was trained otherwise") and said in line
        )
    assert {field for _, field in REUSED_AS} >= {"backbone", "image_size", "epochs", "lr", "seed"}


def test_the_races_small_cnn_stands_in_for_the_small_cnn_arm(
    small_digits: Path, tmp_path: Path
) -> None:
    """graft demo's reuse, for real: auto's race trains small_cnn from the run's configuration;
    given to the comparison with the same budget, it passes the check and is not trained again."""
    data = load(small_digits)
    options = {"strategy": "auto", "total_epochs": 2, "epochs": 2, "race_image_size": 16}
    options |= {"lr": BUDGET["lr"], "batch_size": BUDGET["batch_size"], "image_size": 32}
    model = graft.fit(data, race_scratch=False, cache_dir=str(tmp_path), progress=False,
                      log=lambda _: None, **options)  # fmt: skip
    facts = model.info["advice"]["facts"]
    facts.update(pretrained=True, probe=0.5, pixel_probe=0.6, probe_noise=0.01)  # a contender
    model.info["metrics"]["val"]["accuracy"] = -1.0  # the race keeps the small CNN
    cfg = resolve_config(None, {**options, "cache_dir": str(tmp_path), "progress": False})[0]
    winner = race_scratch(model, data, cfg, log=lambda _: None)
    assert winner.info["advice"]["race"]["kept"] == "scratch"
    lines: list[str] = []
    result = _compare(data, {"small_cnn": winner}, tmp_path, lines)
    assert result.models["small_cnn"] is winner, lines
