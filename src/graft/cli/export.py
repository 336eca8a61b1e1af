"""``graft export MODEL --format onnx``: a saved model that runs without graft."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser(
        "export",
        help="export a saved model (ONNX or TorchScript) with its preprocessing and model card",
    )
    p.add_argument("model", help="a saved model folder")
    p.add_argument(
        "--format", default="onnx", choices=["onnx", "torchscript"], help="export format"
    )
    p.add_argument("--out", "-o", help="folder to write (default: MODEL/export-FORMAT)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    return {"export": cmd_export}


def cmd_export(args: argparse.Namespace) -> int:
    from graft.workflows.export import export

    folder = export(args.model, args.out, format=args.format, opset=args.opset)
    print(f"wrote {folder} (model, preprocessing.json, README.md)", file=sys.stderr)
    return 0
