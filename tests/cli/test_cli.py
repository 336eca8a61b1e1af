"""End to end through the command line: fit, save, load, predict, evaluate on real digits."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from graft.cli import main


def test_fit_predict_evaluate_with_bundled_backbone(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    code = main(
        [
            "fit",
            str(digits_dir),
            "--strategy",
            "two-stage",
            "--epochs",
            "2",
            "--image-size",
            "32",
            "--batch-size",
            "32",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "strategy: two_stage" in text and "test metrics" in text and "accuracy" in text
    assert (out / "model.safetensors").is_file()

    preds = tmp_path / "preds.csv"
    files = [str(p) for p in sorted((digits_dir / "4").iterdir())[:3]]
    assert main(["predict", str(out), *files, "--output", str(preds)]) == 0
    rows = list(csv.DictReader(preds.open()))
    assert [r["path"] for r in rows] == files
    assert all(r["prediction"] in {str(i) for i in range(10)} for r in rows)

    assert main(["predict", str(out), files[0], "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["path"] == files[0]

    assert main(["evaluate", str(out), str(digits_dir)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_dry_run_prints_plan_and_trains_nothing(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    code = main(
        ["fit", str(digits_dir), "--dry-run", "--strategy", "progressive", "--out", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "unfreeze-1" in text and "trainable" in text
    assert not out.exists()


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graft: error:") and "nope" in err
    assert main(["predict", str(tmp_path), "x.png"]) == 2
    assert "not a saved graft model" in capsys.readouterr().err


def test_unknown_strategy_suggests(digits_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", str(digits_dir), "--strategy", "two-stag", "--dry-run"]) == 2
    assert "two_stage" in capsys.readouterr().err


def test_models_lists_bundled(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "timm:" in out


def test_fit_backbone_auto_saves_its_ranking_and_reruns_to_the_same_pick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--backbone auto`` without ``--image-size`` on 16 px digits: the saved model trains at
    the size the size rule picks among the ranked ones, its config.json keeps the ranking, and
    ``--config`` reruns it (the run's configuration keeps ``auto``) to the same pick from stored
    features alone."""
    from graft.data.digits import write_digits

    data = write_digits(tmp_path / "digits", per_class=5, image_size=16)
    out, cache = tmp_path / "model", str(tmp_path / "cache")
    args = ["--strategy", "feature-extraction", "--epochs", "1", "--cache-dir", cache]
    assert main(["fit", str(data), "--backbone", "auto", *args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "--backbone auto: 9 bundled candidates ranked by logme" in text
    config = json.loads((out / "config.json").read_text())
    ranked = config["record"]["backbone_ranking"]
    picked = f"→ {ranked['backbone']} (its input size: the size rule)"
    assert f"input size {ranked['image_size']} px" in text
    assert picked in text and config["record"]["config"]["model"]["backbone"] == "auto"
    assert config["backbone"]["name"] == ranked["backbone"]
    assert config["data_config"]["input_size"][-1] == ranked["image_size"] < 224
    assert main(["fit", str(data), "--config", str(out), "--dry-run"]) == 0
    rerun = capsys.readouterr().out
    stored = re.findall(r" (\d+) computed, (\d+) reused", rerun)
    assert picked in rerun and len(stored) == 9, rerun
    assert all(c == "0" and int(r) > 0 for c, r in stored), "every pair read from the store"
