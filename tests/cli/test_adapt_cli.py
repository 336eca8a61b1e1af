"""``graft adapt SOURCE TARGET`` and the adaptation options of ``graft fit``, end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from graft.cli import main
from graft.cli.adapt import parse_options

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"]


def test_adapt_command_on_tiny_digits(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graft.data.digits import write_digits

    target = write_digits(tmp_path / "target", per_class=3, seed=5)  # its class folders go unread
    out = tmp_path / "model"
    code = main(
        ["adapt", str(digits_dir), str(target), "--method", "dann", "--adapt-options",
         "hidden=16,max-coeff=0.5", "--target-eval", str(target), *TINY, "--epochs", "1",
         "--top", "1", "--batch-size", "32", "--out", str(out), "--no-progress",
         "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "adaptation: dann with 30 unlabeled target images" in text
    assert "target (report only)" in text and "target metrics" in text
    assert "dann: domain_acc" in text, "domain accuracy is reported per epoch"
    info = json.loads((out / "config.json").read_text())["record"]["extensions"]["adaptation"]
    assert info["method"] == "dann" and info["options"]["hidden"] == 16
    assert info["options"]["max_coeff"] == 0.5 and info["target_eval"]["n"] == 30


def test_fit_takes_the_same_options(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", str(digits_dir), "--unlabeled", str(digits_dir), "--adapt", "mmd", *TINY]
    args += ["--strategy", "two_stage"]
    assert main([*args, "--dry-run", "--out", str(tmp_path / "never")]) == 0
    assert "adaptation: mmd with 150 unlabeled target images" in capsys.readouterr().out
    assert (
        main(["fit", str(digits_dir), "--adapt", "coral", "--dry-run", "--strategy", "full", *TINY])
        == 2
    )
    assert "needs unlabeled target images" in capsys.readouterr().err


def test_adapt_runs_on_several_devices_like_fit(
    digits_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 10: `graft adapt --devices 2` used to be refused while `graft fit --unlabeled
    # --devices 2` ran; both now relaunch under torchrun with the same arguments.
    import subprocess

    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    argv = ["adapt", str(digits_dir), str(digits_dir), "--devices", "2", *TINY]
    assert main(argv) == 0
    (cmd,) = calls
    assert "--nproc-per-node=2" in cmd and "torch.distributed.run" in cmd
    assert cmd[cmd.index("graft.cli") + 1 :] == [a for a in argv if a not in ("--devices", "2")]


def test_parse_options() -> None:
    assert parse_options("weight=0.5, hidden=256,estimator=linear,max-coeff=1") == {
        "weight": 0.5,
        "hidden": 256,
        "estimator": "linear",
        "max_coeff": 1,
    }
    with pytest.raises(argparse.ArgumentTypeError, match="key=value"):
        parse_options("weight")
