"""Export: the ONNX file, run by ONNX Runtime alone on images preprocessed with PIL and NumPy as
``preprocessing.json`` says, gives what ``graft predict`` gives; the model card is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graft
from graft.errors import ConfigError
from graft.testing import tiny_backbone
from graft.workflows.export import export

ort = pytest.importorskip("onnxruntime")


def _fit(digits_dir: Path, out: Path, backbone: Any, **kw: Any) -> graft.GraftModel:
    return graft.fit(
        digits_dir,
        backbone=backbone,
        strategy="feature_extraction",
        epochs=2,
        progress=False,
        out=out,
        log=lambda s: None,
        **kw,
    )


@pytest.fixture(scope="module")
def tiny_model(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tiny"
    _fit(digits_dir, out, tiny_backbone(image_size=32), dropout=0.2)
    return out


def _preprocess(path: Path, meta: dict[str, Any]) -> np.ndarray:
    """The recipe of preprocessing.json with PIL and NumPy only (no graft, timm or torch)."""
    from PIL import Image

    i = meta["input"]
    filters = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}
    with Image.open(path) as im:
        im = im.convert(i["mode"])
    w, h = im.size
    short = i["resize_shorter_side"]
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    im = im.resize(size, filters[i["interpolation"]])
    c = i["center_crop"]
    left, top = round((im.width - c) / 2.0), round((im.height - c) / 2.0)
    a = np.asarray(im.crop((left, top, left + c, top + c)), dtype=np.float32) * i["scale"]
    a = a.reshape(c, c, -1).transpose(2, 0, 1)
    return (a - np.array(i["mean"], np.float32)[:, None, None]) / np.array(i["std"], np.float32)[
        :, None, None
    ]


def _parity(model_dir: Path, files: list[Path], tol: float) -> None:
    folder = export(model_dir, format="onnx")
    meta = json.loads((folder / "preprocessing.json").read_text())
    session = ort.InferenceSession(str(folder / meta["model_file"]))
    batch = np.stack([_preprocess(f, meta) for f in files]).astype(np.float32)
    onnx_out = session.run([meta["output"]["name"]], {meta["input"]["name"]: batch})[0]
    rows = graft.load(model_dir).predict(files)
    expected = graft.load(model_dir).predict_outputs(files)
    np.testing.assert_allclose(onnx_out, expected, atol=tol)
    names = meta["output"]["columns"]
    assert [names[k] for k in onnx_out.argmax(axis=1)] == [r["prediction"] for r in rows]
    assert meta["class_names"] == [str(d) for d in range(10)]
    card = (folder / "README.md").read_text()
    assert "onnxruntime" in card and "## Metrics" in card


def _files(digits_dir: Path) -> list[Path]:
    return [sorted((digits_dir / str(d)).iterdir())[0] for d in range(10)]


def test_onnx_export_of_a_tiny_timm_model_matches_predict(
    tiny_model: Path, digits_dir: Path
) -> None:
    _parity(tiny_model, _files(digits_dir), tol=1e-4)


def test_onnx_export_of_the_bundled_lite0_matches_predict(digits_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lite0"
    _fit(digits_dir, out, "efficientnet_lite0", image_size=32)
    _parity(out, _files(digits_dir), tol=1e-4)


def test_the_model_card_says_data_metrics_plan_and_backbone(tiny_model: Path) -> None:
    card = (tiny_model / "README.md").read_text()
    for needed in ("## Data and task", "| test |", "feature_extraction", "licence", "graft.load"):
        assert needed in card, needed


def test_torchscript_export_and_refusals(
    tiny_model: Path, tmp_path: Path, digits_dir: Path
) -> None:
    import torch

    folder = export(tiny_model, tmp_path / "ts", format="torchscript")
    scripted = torch.jit.load(str(folder / "model.torchscript.pt"))
    x = torch.zeros((2, 3, 32, 32))
    expected = graft.load(tiny_model).eval()(x).softmax(dim=1)
    torch.testing.assert_close(scripted(x), expected, atol=1e-5, rtol=1e-4)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a graft export"):
        export(tiny_model, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").exists()
    with pytest.raises(Exception, match="export format"):
        export(tiny_model, tmp_path / "x", format="tflite")


def test_the_export_command(tiny_model: Path, tmp_path: Path) -> None:
    from graft.cli import main

    assert main(["export", str(tiny_model), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "model.onnx").is_file()
    assert json.loads((tmp_path / "cli" / "preprocessing.json").read_text())["input"]["mean"]
