"""``graft predict MODEL FILES...``: predictions of a saved model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("predict", help="predict image files with a saved model")
    p.add_argument("model", help="a saved model folder")
    p.add_argument("files", nargs="+", help="image files or folders")
    p.add_argument(
        "--output", "-o", help="write predictions here (.csv or .json); default: CSV to stdout"
    )
    p.add_argument(
        "--format", choices=["csv", "json"], help="output format (default from --output's suffix)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--mc-samples",
        type=int,
        default=0,
        help="MC dropout: predict each file N times with dropout on; report mean and spread",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=0,
        help="classification: also give the K most probable classes with their probabilities",
    )
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars"
    )
    return {"predict": cmd_predict}


def cmd_predict(args: argparse.Namespace) -> int:
    from graft.io import write_records
    from graft.model import load

    model = load(args.model)
    rows = model.predict(
        args.files,
        batch_size=args.batch_size,
        mc_samples=args.mc_samples,
        top_k=args.top_k,
        progress=args.progress,
    )
    write_records(rows, args.output, fmt=args.format)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return 0
