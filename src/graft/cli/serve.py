"""``graft serve MODEL``: answer prediction requests over HTTP (binds to localhost by default)."""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("serve", help="serve a saved model over HTTP (POST /predict, GET /health)")
    p.add_argument("model", help="a saved model folder")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default localhost only; 0.0.0.0 opens it)",
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--root", help="JSON path requests may read files only under this folder (default: .)"
    )
    p.add_argument("--max-batch", type=int, default=32, help="most images per forward pass")
    return {"serve": cmd_serve}


def cmd_serve(args: argparse.Namespace) -> int:
    from graft.errors import ConfigError

    try:
        from graft.workflows.serve import serve
    except ImportError as e:
        raise ConfigError(
            f"graft serve needs FastAPI and uvicorn ({e}): pip install 'graft-ml[serve]'"
        ) from None

    serve(args.model, host=args.host, port=args.port, root=args.root, max_batch=args.max_batch)
    return 0
