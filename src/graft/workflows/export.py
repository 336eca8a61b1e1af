"""Export a saved model so it runs without graft: ONNX (ONNX Runtime alone) or TorchScript.

The exported graph is the whole model, backbone and head, and ends with the task's decoding
(softmax for classes, sigmoid for labels, original units for values), so its output is what
``graft predict`` reports. Beside it, ``preprocessing.json`` records how to turn an image into
the input (size, resize, crop, mean, std, interpolation) and what each output column means (class
names, target names, task), and ``README.md`` is the model card with an export note.

Example::

    from graft.workflows.export import export
    folder = export("runs/digits", format="onnx")   # runs/digits/export-onnx/model.onnx
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft._registry import Registry
from graft.errors import ConfigError
from graft.io import atomic_dir
from graft.model import GraftModel, load
from graft.model_card import render_card
from graft.tasks.base import TaskSpec

EXPORT_FORMAT = "graft-export"
EXPORT_VERSION = 1
PREPROCESSING_FILE = "preprocessing.json"

Exporter = Callable[[nn.Module, torch.Tensor, Path, int], str]
EXPORTERS: Registry[Exporter] = Registry("export format")


class Decoded(nn.Module):
    """A model whose output is decoded: probabilities, label probabilities or original units.

    Shape:
        - Input: ``(batch, channels, height, width)`` preprocessed as ``preprocessing.json`` says.
        - Output: ``(batch, num_outputs)`` float32, as ``GraftModel.predict_outputs`` returns.
    """

    def __init__(self, model: GraftModel) -> None:
        super().__init__()
        self.model = model
        self.parts = _decode_parts(model.task_spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x).float()
        out = []
        start = 0
        for kind, width, mean, std in self.parts:
            part = z[:, start : start + width]
            start += width
            if kind == "softmax":
                out.append(torch.softmax(part, dim=1))
            elif kind == "sigmoid":
                out.append(torch.sigmoid(part))
            else:
                out.append(part * torch.tensor(std) + torch.tensor(mean))
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def _decode_parts(spec: TaskSpec) -> list[tuple[str, int, list[float], list[float]]]:
    """(decoding, width, mean, std) per output slice, in output order."""
    if spec.kind == "multitask":
        return [p for sub in spec.subtasks or () for p in _decode_parts(sub)]
    n = spec.num_outputs
    if spec.kind == "classification":
        return [("softmax", n, [], [])]
    if spec.kind == "multilabel":
        return [("sigmoid", n, [], [])]
    if spec.kind == "regression":
        mean = list(spec.target_mean or [0.0] * n)
        std = list(spec.target_std or [1.0] * n)
        return [("affine", n, mean, std)]
    raise ConfigError(f"export: task kind {spec.kind!r} has no decoding for export")


@EXPORTERS.register("onnx")
def _onnx(module: nn.Module, example: torch.Tensor, folder: Path, opset: int) -> str:
    file = folder / "model.onnx"
    torch.onnx.export(
        module,
        (example,),
        str(file),
        input_names=["pixels"],
        output_names=["outputs"],
        dynamic_axes={"pixels": {0: "batch"}, "outputs": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    return file.name


@EXPORTERS.register("torchscript")
def _torchscript(module: nn.Module, example: torch.Tensor, folder: Path, opset: int) -> str:
    file = folder / "model.torchscript.pt"
    traced = torch.jit.trace(module, (example,), check_trace=False)
    traced.save(str(file))
    return file.name


def export(
    model: GraftModel | str | Path,
    out: str | Path | None = None,
    *,
    format: str = "onnx",
    opset: int = 17,
) -> Path:
    """Write ``model`` in ``format`` with its preprocessing and model card; returns the folder.

    Args:
        model: a :class:`GraftModel` or a saved model folder.
        out: the folder to write (replaced atomically); default ``MODEL/export-FORMAT`` for a
            saved model.
        format: a registered export format (``onnx``, ``torchscript``).
        opset: the ONNX opset.

    Raises:
        ConfigError: an unknown format, no ``out`` for an unsaved model, or a text model.
    """
    exporter = EXPORTERS.get(format)
    source = model if isinstance(model, (str, Path)) else None
    loaded = load(model) if isinstance(model, (str, Path)) else model
    if out is None:
        if source is None:
            raise ConfigError("export: pass out=FOLDER for a model that was not loaded from disk")
        out = Path(source) / f"export-{format}"
    out = Path(out)
    if out.exists() and not (out / PREPROCESSING_FILE).exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: exists and is not a graft export; choose another --out folder")
    if getattr(loaded.backbone, "input_kind", "image") != "image":
        raise ConfigError(
            f"export: only image models export today, not {loaded.backbone.input_kind}"
        )
    wrapped = Decoded(loaded).eval()
    example = torch.zeros((1, *loaded.data_config.input_size), dtype=torch.float32)
    with atomic_dir(out) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
            name = exporter(wrapped, example, tmp, opset)
        meta = preprocessing(loaded, file=name, format=format)
        (tmp / PREPROCESSING_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        card = render_card(
            loaded.record, loaded.backbone.spec, loaded.data_config, loaded.task_spec
        )
        (tmp / "README.md").write_text(card + "\n" + _export_note(meta))
    return out


def preprocessing(model: GraftModel, *, file: str, format: str) -> dict[str, Any]:
    """What ``preprocessing.json`` records: the input recipe, the output columns and the task."""
    dc = model.data_config
    size = dc.image_size
    spec = model.task_spec
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "model_file": file,
        "model_format": format,
        "input": {
            "name": "pixels",
            "layout": "NCHW",
            "dtype": "float32",
            "shape": [None, *dc.input_size],
            "channels": dc.channels,
            "mode": "RGB" if dc.channels == 3 else "L",
            "resize_shorter_side": math.floor(size / dc.crop_pct),
            "center_crop": size,
            "interpolation": dc.interpolation,
            "crop_pct": dc.crop_pct,
            "scale": 1 / 255,
            "mean": list(dc.mean),
            "std": list(dc.std),
        },
        "output": {"name": "outputs", "columns": _columns(spec), "decoded": True},
        "task": spec.to_dict(),
        "class_names": list(spec.class_names or []),
        "target_names": list(spec.target_names or []),
    }


def _columns(spec: TaskSpec) -> list[str]:
    if spec.kind == "multitask":
        return [f"{sub.name}_{c}" for sub in spec.subtasks or () for c in _columns(sub)]
    names = spec.class_names or spec.target_names
    return list(names) if names else [str(i) for i in range(spec.num_outputs)]


def _export_note(meta: dict[str, Any]) -> str:
    i = meta["input"]
    return (
        "\n## This export\n"
        f"`{meta['model_file']}` ({meta['model_format']}): input `pixels` float32 NCHW; convert "
        f"the image to {i['mode']}, resize its shorter side to {i['resize_shorter_side']} px "
        f"({i['interpolation']}), center-crop {i['center_crop']} px, scale to [0, 1], subtract "
        f"mean {i['mean']} and divide by std {i['std']} per channel. Output `outputs`: one "
        f"column per entry of `output.columns` in `{PREPROCESSING_FILE}` (already decoded: "
        "probabilities or values).\n"
        "```python\nimport onnxruntime as ort\n"
        "session = ort.InferenceSession('model.onnx')\n"
        "probs = session.run(['outputs'], {'pixels': batch})[0]\n```\n"
    )
