"""``graft models``: the bundled backbones and how to use any timm model."""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    sub.add_parser("models", help="list bundled backbones and how to use any timm model")
    return {"models": cmd_models}


def cmd_models(args: argparse.Namespace) -> int:
    del args
    from graft.backbones import USAGE, list_bundled

    print("bundled backbones (work offline):")
    for entry in list_bundled():
        print(f"  {entry['name']:<22} {entry.get('description', '')}")
    print()
    print(USAGE)
    return 0
