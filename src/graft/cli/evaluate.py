"""``graft evaluate MODEL DATA``: metrics of a saved model on labelled data."""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler
from graft.cli.fit import print_metrics


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("evaluate", help="metrics of a saved model on labelled data")
    p.add_argument("model", help="a saved model folder")
    p.add_argument(
        "data",
        help="image folder or table: its test split (the training data is split as in "
        "training), else all files",
    )
    p.add_argument("--split", choices=["train", "val", "test"], help="evaluate this split only")
    p.add_argument("--batch-size", type=int, default=64)
    return {"evaluate": cmd_evaluate}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from graft.model import load

    model = load(args.model)
    print_metrics(
        {"evaluation": model.evaluate(args.data, split=args.split, batch_size=args.batch_size)}
    )
    return 0
