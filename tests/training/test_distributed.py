"""Two-process DDP on CPU (gloo) gives the same model as one process, through the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fit(digits_dir: Path, out: Path, cache: Path, *extra: str) -> str:
    cmd = [
        sys.executable, "-m", "graft.cli", "fit", str(digits_dir),
        "--backbone", "timm:resnet10t", "--no-pretrained", "--image-size", "32",
        "--strategy", "feature-extraction", "--epochs", "3", "--batch-size", "32",
        "--no-progress", "--cache-dir", str(cache), "--out", str(out), "--seed", "3",
        # 96 training images: three full batches of 32, split 16 + 16 across two processes
        # (Accelerate pads a partial last batch, which would weigh samples differently).
        "--val-fraction", "0.18", "--test-fraction", "0.18", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(digits_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    single = _fit(digits_dir, tmp_path / "single", cache)
    out = _fit(
        digits_dir, tmp_path / "ddp", cache, "--devices", "2", "--master-port", str(_free_port())
    )
    assert "distributed: 2 processes" in out
    assert out.count("test metrics") == 1, "only the first process prints"
    a = load_file(str(tmp_path / "single" / "model.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(
            a[k], b[k], rtol=1e-4, atol=1e-5, msg=f"{k} differs under DDP\n{single}\n{out}"
        )
    head = a["head.fc.weight"]
    assert not torch.allclose(head, torch.zeros_like(head))
