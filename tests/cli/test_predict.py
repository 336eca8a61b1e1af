"""``graft predict``: a second call on the same model reuses the cached ONNX engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.backbones import create, engines
from graft.cli import main
from graft.model import GraftModel
from graft.tasks import Classification


def test_a_second_predict_reuses_the_exported_engine(
    digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exports: list[int]
) -> None:
    pytest.importorskip("onnxruntime")
    calls = exports
    torch.manual_seed(0)
    backbone = create("timm:test_efficientnet", pretrained=False, image_size=32)
    GraftModel(backbone, Classification.spec_for([str(d) for d in range(10)])).save(tmp_path / "m")
    files = [str(p) for p in sorted(digits_dir.rglob("*.png"))[:40]]
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GRAFT_ENGINE", "onnxruntime")  # as from 256 files on, on few files
    outputs = []
    for i in range(2):
        out = tmp_path / f"p{i}.csv"
        assert main(["predict", str(tmp_path / "m"), *files, "-o", str(out), "--no-progress"]) == 0
        outputs.append(out.read_text())
    assert len(calls) == 1  # the second call read the engine back
    assert outputs[0] == outputs[1] and len(outputs[0].splitlines()) == len(files) + 1
    # the automatic choice probes the cached export on any probed pass, however short
    monkeypatch.delenv("GRAFT_ENGINE")
    monkeypatch.setattr(engines, "PROBE_MIN_PASS_S", 0.0)
    assert main(["predict", str(tmp_path / "m"), *files, "-o", str(tmp_path / "p.csv")]) == 0
    assert len(calls) == 1
