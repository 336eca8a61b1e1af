"""More ``graft`` sub-commands, one module per family (measure, prove, adapt, cache).

Each module defines ``register(sub) -> dict[str, handler]``: it adds its parsers to the
sub-parser action and returns the handlers by command name. :mod:`graft.cli` discovers every
module here, so a new command is one new file. Handlers import heavy libraries inside.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any], int]


def register_all(sub: Any) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    import graft.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"graft.cli.{info.name}")
        handlers.update(module.register(sub))
    return handlers
