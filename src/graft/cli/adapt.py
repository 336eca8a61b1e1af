"""``graft adapt SOURCE TARGET``: fit on labeled source data, adapted to unlabeled target images.

``graft adapt SOURCE TARGET --method M`` is ``graft fit SOURCE --unlabeled TARGET --adapt M``
(both are ``graft.fit(SOURCE, unlabeled=TARGET, adapt=M)``), with every ``graft fit`` option,
``--devices`` included; its default strategy is ``two_stage`` rather than ``auto``, because the
advisor may keep the backbone frozen, where feature alignment cannot act, and its default
method is ``dann``.
"""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler
from graft.cli._flags import parse_options
from graft.cli.fit import config_from_args, fit_parser, run_fit
from graft.config import FitConfig

FLAGS = {"adapt": "--method"}  # flat name -> this command's flag
ADAPT_DEFAULTS = FitConfig.create(strategy="two_stage", adapt="dann")


def register(sub: Any) -> dict[str, Handler]:
    p = fit_parser(
        sub,
        "adapt",
        "fit on labeled SOURCE data, adapted to unlabeled TARGET images",
        skip=("unlabeled",),
        flags=FLAGS,
    )
    p.add_argument(
        "target",
        help="unlabeled target images: a folder (class folders, if any, are ignored) "
        "or a table of paths",
    )
    return {"adapt": cmd_adapt}


def cmd_adapt(args: argparse.Namespace) -> int:
    config = config_from_args(args, base=ADAPT_DEFAULTS).with_overrides(unlabeled=args.target)
    return run_fit(args, config)


__all__ = ["cmd_adapt", "parse_options", "register"]
