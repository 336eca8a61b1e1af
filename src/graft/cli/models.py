"""``graft models``: the bundled backbones and how to use any timm model."""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    sub.add_parser("models", help="list bundled image and text backbones, and every source")
    return {"models": cmd_models}


def cmd_models(args: argparse.Namespace) -> int:
    del args
    from graft.backbones import models_text

    print(models_text())
    return 0
