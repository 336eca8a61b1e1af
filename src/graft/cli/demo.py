"""``graft demo``: transfer the bundled backbone to real handwritten digits."""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("demo", help="transfer the bundled backbone to real handwritten digits")
    p.add_argument("--out", default="graft-demo", help="folder for the data and the model")
    p.add_argument(
        "--epochs", type=int, default=None, help="epochs per stage (default: the demo's budget)"
    )
    return {"demo": cmd_demo}


def cmd_demo(args: argparse.Namespace) -> int:
    from graft.workflows.demo import run_demo

    run_demo(args.out, epochs=args.epochs)
    return 0
