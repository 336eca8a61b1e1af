"""Every registered strategy runs end to end from the command line, and a killed run resumes.

These loop over the strategy registry, so a new strategy is covered without editing a list.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from graft.cli import main
from graft.strategies import STRATEGIES

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"]
QUIET = ["--batch-size", "16", "--no-progress", "--no-augment"]


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_runs_from_the_cli(
    name: str, digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    code = main(
        [
            "fit",
            str(digits_dir),
            *("--strategy", name.replace("_", "-"), "--epochs", "1"),
            *TINY,
            *QUIET,
            *("--out", str(out)),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "test metrics" in text and "accuracy" in text
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert main(["evaluate", str(out), str(digits_dir), "--split", "test"]) == 0


def _fit_command(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "graft.cli",
        "fit",
        str(data),
        "--strategy",
        "two-stage",
        "--head-epochs",
        "2",
        "--epochs",
        "4",
        *TINY,
        *QUIET,
        "--out",
        str(out),
        *extra,
    ]


def _wait_for_checkpoint(proc: subprocess.Popen[bytes], last: Path, epochs: int) -> None:
    """Wait until the checkpoint records ``epochs`` finished epochs of the second stage."""
    from graft.training.checkpoint import load_checkpoint

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if last.exists():
            try:
                state = load_checkpoint(last)
            except Exception:  # written while we read: atomic rename, try again
                state = {}
            if state.get("stage") == 1 and state.get("epoch", 0) >= epochs:
                return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of stage 2 epoch {epochs} appeared (rc {proc.poll()})")


def test_killed_cli_run_resumes_to_the_same_weights(digits_dir: Path, tmp_path: Path) -> None:
    """SIGKILL mid stage 2, then ``--resume``: the same weights as an uninterrupted run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full"
    subprocess.run(_fit_command(digits_dir, full), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _fit_command(digits_dir, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_checkpoint(proc, Path(f"{killed}.ckpt") / "last", epochs=1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not killed.exists(), "the run finished before it could be killed"
    resumed = subprocess.run(
        _fit_command(digits_dir, killed, "--resume"), env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout

    from safetensors.torch import load_file

    a = load_file(str(full / "model.safetensors"))
    b = load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=f"{key} differs after resume")


def test_evaluate_on_the_training_folder_scores_the_held_out_split(
    digits_dir: Path, tmp_path: Path
) -> None:
    import graft
    from graft.testing import tiny_backbone

    model = graft.fit(
        digits_dir,
        backbone=tiny_backbone(),
        strategy="feature_extraction",
        epochs=2,
        batch_size=16,
        progress=False,
        out=tmp_path / "m",
    )
    reloaded = graft.load(tmp_path / "m")
    assert reloaded.evaluate(digits_dir) == pytest.approx(model.info["metrics"]["test"])
    n_test = model.info["data"]["n_test"]
    assert len(reloaded.samples_for(digits_dir)) == n_test


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_runs_on_texts(name: str, bbc_dir: Path, tmp_path: Path) -> None:
    """The same contract on texts (a tiny BERT, 32 tokens): fit, save, load, predict alike."""
    import graft
    from graft.errors import BackboneError
    from graft.testing import tiny_text_backbone

    try:
        backbone = tiny_text_backbone()
    except BackboneError as e:
        pytest.skip(str(e))
    out = tmp_path / "model"
    model = graft.fit(
        bbc_dir, backbone=backbone, strategy=name, epochs=2, max_length=32, batch_size=16,
        progress=False, out=out, log=lambda s: None,
    )  # fmt: skip
    assert model.record.plan and model.record.plan["stages"]
    loaded = graft.load(out)
    texts = ["Shares rose after the bank beat profit forecasts.", "The striker scored twice."]
    assert [r["prediction"] for r in loaded.predict(texts)] == [
        r["prediction"] for r in model.predict(texts)
    ]
    assert 0 <= loaded.evaluate(bbc_dir)["accuracy"] <= 1
