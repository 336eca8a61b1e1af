"""From the command line: a chained transfer (digits 0-4 from scratch -> digits 5-9 with few
labels) and every registered regularizer, with its penalty in the history and retention stored."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from graft.cli import main
from graft.protect import REGULARIZERS
from graft.record import RunRecord

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"]


def _subset(digits_dir: Path, root: Path, classes: range, per_class: int) -> Path:
    for k in classes:
        files = sorted((digits_dir / str(k)).iterdir())[:per_class]
        (root / str(k)).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / str(k) / f.name)
    return root


def _config(model: Path) -> dict:
    return json.loads((model / "config.json").read_text())


def test_chained_transfer_from_a_small_cnn(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    low = _subset(digits_dir, tmp_path / "low", range(5), 15)
    high = _subset(digits_dir, tmp_path / "high", range(5, 10), 8)  # few labels
    source, target = tmp_path / "source", tmp_path / "target"
    common = ["--image-size", "16", "--batch-size", "16", "--no-progress"]
    scratch = ["--backbone", "small_cnn_gray", "--no-pretrained", "--strategy", "full"]
    code = main(["fit", str(low), *scratch, "--lr-factor", "1", "--epochs", "2", *common,
                 "--lr", "3e-3", "--out", str(source)])  # fmt: skip
    assert code == 0
    code = main(["fit", str(high), "--backbone", str(source), "--strategy", "two_stage",
                 "--epochs", "1", *common, "--out", str(target)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "retention (original model" in printed and "test metrics" in printed
    config = _config(target)
    assert config["backbone"]["source"] == "graft"
    assert config["backbone"]["arch"] == "small_cnn_gray"
    assert config["backbone"]["kwargs"]["chain"] == [str(source.resolve())]
    assert config["task"]["class_names"] == [str(k) for k in range(5, 10)]
    assert 0.0 <= config["record"]["extensions"]["retention"]["top1_agreement"] <= 1.0
    files = [str(p) for p in sorted((high / "7").iterdir())[:2]]
    assert main(["predict", str(target), *files, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["prediction"] in {str(k) for k in range(5, 10)} for r in rows)


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_regularize_from_the_cli(name: str, digits_dir: Path, tmp_path: Path) -> None:
    log, out = tmp_path / "log.csv", tmp_path / "model"
    code = main(["fit", str(digits_dir), *TINY, "--strategy", "two_stage", "--epochs", "1",
                 "--batch-size", "32", "--no-progress", "--regularize", name,
                 "--regularize-strength", "0.5", "--log-csv", str(log), "--out", str(out)])  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(log.open()))
    tuned = [r for r in rows if r["stage"] != "head"]
    assert tuned and all(r[f"train_{name}_loss"] for r in tuned)
    penalty = [float(r[f"train_{name}_loss"]) for r in tuned]
    assert all(math.isfinite(p) and p > 0 for p in penalty)
    info = RunRecord.from_dict(_config(out)["record"]).to_info()  # the saved run record
    cls = REGULARIZERS.get(name)
    assert info["regularize"]["name"] == name and info["regularize"][cls.strength] == 0.5
    assert info["history"][-1][f"train_{name}_loss"] == pytest.approx(penalty[-1])
    assert set(info["retention"]) >= {"top1_agreement", "mean_kl", "samples", "reference"}
