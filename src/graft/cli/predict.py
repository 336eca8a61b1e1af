"""``graft predict MODEL FILES...``: predictions of a saved model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("predict", help="predict image files or texts with a saved model")
    p.add_argument("model", help="a saved model folder")
    p.add_argument(
        "files", nargs="*", help="image files or folders; text models: .txt files or a table"
    )
    p.add_argument(
        "--text", action="append", default=[], help="text models: a text to predict (repeatable)"
    )
    p.add_argument("--text-column", help="text models: the table column holding the texts")
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
    return {"predict": cmd_predict}


def cmd_predict(args: argparse.Namespace) -> int:
    from graft.io import write_records
    from graft.model import load

    model = load(args.model)
    if model.input_kind == "text":
        from graft.data.text import texts_to_predict

        names, texts = texts_to_predict(args.files, args.text, args.text_column)
        rows = model.predict(texts, batch_size=args.batch_size, mc_samples=args.mc_samples)
        rows = [{"source": n, **r} for n, r in zip(names, rows, strict=True)]
    elif args.text or args.text_column:
        raise SystemExit(
            "graft predict: --text/--text-column need a text model; this one reads images"
        )
    else:
        if not args.files:
            raise SystemExit("graft predict: pass image files or folders to predict")
        rows = model.predict(args.files, batch_size=args.batch_size, mc_samples=args.mc_samples)
    write_records(rows, args.output, fmt=args.format)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return 0
