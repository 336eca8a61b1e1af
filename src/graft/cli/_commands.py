"""Every ``graft`` sub-command, registered in one place.

Each module listed here defines ``register(sub) -> dict[str, handler]``: it adds its parsers to
the sub-parser action and returns the handlers by command name. Modules import only argparse
and :mod:`graft.config` at the top; handlers import torch-heavy code inside, so ``graft --help``
and ``graft CMD --help`` start fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any], int]

COMMAND_MODULES = (
    "fit",
    "adapt",
    "predict",
    "evaluate",
    "models",
    "demo",
    "lr_find",
    "measure",
    "prove",
    "cache",
    "export",
    "serve",
)


def register_all(sub: Any) -> dict[str, Handler]:
    """Add every command's parser to ``sub``; returns the handlers by command name."""
    handlers: dict[str, Handler] = {}
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"graft.cli.{name}")
        handlers.update(module.register(sub))
    return handlers
