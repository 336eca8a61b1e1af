"""``graft predict MODEL FILES...``: predictions of a saved model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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
    p.add_argument(
        "--strict", action="store_true", help="stop at an unreadable file instead of skipping it"
    )
    p.add_argument(
        "--fail-on-skip",
        action="store_true",
        help="exit with status 1 when a file was skipped (the others are still written)",
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
    """Predict every readable file; list the unreadable ones (``--strict`` stops at the first)."""
    from graft.errors import DataError
    from graft.io import write_records
    from graft.model import _expand, load

    model = load(args.model)
    options = {
        "batch_size": args.batch_size,
        "mc_samples": args.mc_samples,
        "top_k": args.top_k,
        "progress": args.progress,
    }
    if model.input_kind == "text":
        from graft.data.text import texts_to_predict

        names, texts = texts_to_predict(args.files, args.text, args.text_column)
        rows = model.predict(texts, **options)
        rows = [{"source": n, **r} for n, r in zip(names, rows, strict=True)]
        skipped: list = []
    elif args.text or args.text_column:
        raise SystemExit(
            "graft predict: --text/--text-column need a text model; this one reads images"
        )
    else:
        if not args.files:
            raise SystemExit("graft predict: pass image files or folders to predict")
        paths, skipped = readable(_expand(args.files), strict=args.strict)
        if not paths:
            raise DataError(f"none of the {len(skipped)} files is a readable image; see above")
        rows = model.predict(paths, **options)
    write_records(rows, args.output, fmt=args.format)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return 1 if skipped and args.fail_on_skip else 0


def readable(paths: list[Path], *, strict: bool) -> tuple[list[Path], list[Path]]:
    """The files that decode, and the others (listed on stderr; ``strict``: DataError)."""
    from graft.data.images import check_image
    from graft.errors import DataError

    good, bad = [], []
    for p in paths:
        why = check_image(p)
        if why is None:
            good.append(p)
            continue
        if strict:
            raise DataError(f"{p}: {why}; remove it, or drop --strict to skip it")
        print(f"graft: skipped {p}: {why}", file=sys.stderr)
        bad.append(p)
    if bad:
        print(f"graft: skipped {len(bad)} of {len(paths)} files (--strict stops instead)",
              file=sys.stderr)  # fmt: skip
    return good, bad
