"""Real faults during a run: a killed run resumed with other options, SIGINT's advice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--batch-size", "16"]
QUIET = ["--no-progress", "--no-augment"]


def _env() -> dict[str, str]:
    """The environment at call time: the autouse fixture's isolated cache folder included."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _fit(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "graft.cli", "fit", str(data)),
        # Long enough that the run is still going when the signal arrives (seen three times: a
        # 20-epoch run of this tiny model, with or without early stopping, finished in 6 s before
        # the poll caught a checkpoint). The signal stops it after its first finished epoch, so
        # the length costs nothing; a run the poll misses ends at the poll's deadline.
        *("--strategy", "two-stage", "--head-epochs", "2", "--epochs", "400"),
        *("--patience", "1000"),
        *TINY,
        *QUIET,
        *("--out", str(out)),
        *extra,
    ]


def _start_and_stop(command: list[str], last: Path, sig: int) -> subprocess.CompletedProcess[str]:
    """Run ``command`` until its checkpoint holds a finished epoch, then send it ``sig``.

    Only the checkpoint's ``state.json`` is read (:func:`read_state`: one file, replaced
    atomically): loading the whole checkpoint races with the run replacing its two files every
    epoch, and on a loaded machine lost that race for a whole run (a 72 s run the poll never saw).
    """
    from graft.training.checkpoint import read_state

    proc = subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if read_state(last).get("epoch", 0) >= 1:
                    break
            except Exception:  # not written yet, or renamed while read
                pass
            time.sleep(0.05)
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.fixture(scope="module")
def killed_run(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run SIGKILLed after its first finished epoch; returns its --out."""
    out = tmp_path_factory.mktemp("killed") / "model"
    done = _start_and_stop(
        _fit(digits_dir, out, "--image-size", "32"), Path(f"{out}.ckpt/last"), signal.SIGKILL
    )
    assert done.returncode == -signal.SIGKILL and not out.exists()
    return out


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--image-size", "40"], "image size"),
        (["--image-size", "32", "--epochs", "3"], "plan"),
        (["--image-size", "32", "--head-epochs", "1"], "plan"),
    ],
)
def test_resume_with_another_runs_checkpoint_says_what_differs(
    killed_run: Path, digits_dir: Path, extra: list[str], names: str
) -> None:
    command = [*_fit(digits_dir, killed_run), *extra, "--resume"]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("graft: error: --resume") and names in line, line
    assert "Traceback" not in done.stderr and not killed_run.exists()


def test_resume_on_other_classes_says_so(
    killed_run: Path, digits_dir: Path, tmp_path: Path
) -> None:
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for name in ["0", "1", "2", "3", "4", "5", "6", "7", "8"]:  # class 9 left out
        (fewer / name).symlink_to(digits_dir / name, target_is_directory=True)
    command = [*_fit(fewer, killed_run), "--image-size", "32", "--resume"]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    assert "classes (checkpoint:" in done.stderr and "Traceback" not in done.stderr


def test_sigint_says_how_to_resume(digits_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    command = _fit(digits_dir, out, "--image-size", "32")
    done = _start_and_stop(command, Path(f"{out}.ckpt/last"), signal.SIGINT)
    seen = sorted(p.name for p in out.parent.rglob("*"))
    assert done.returncode == 130, f"files: {seen}\n{done.stderr}"
    line = done.stderr.strip().splitlines()[-1]
    assert f"saved in {out}.ckpt" in line and "--resume`" in line, line
    assert "Traceback" not in done.stderr
