"""``graft adapt SOURCE TARGET``: fit on labeled source data, adapted to unlabeled target images.

``graft adapt SOURCE TARGET --method M`` is ``graft fit SOURCE --unlabeled TARGET --adapt M``
(both are ``graft.fit(SOURCE, unlabeled=TARGET, adapt=M)``), with every ``graft fit`` option;
its default strategy is ``two_stage`` rather than ``auto``, because the advisor may keep the
backbone frozen, where feature alignment cannot act. This module also gives ``graft fit`` its
adaptation options.
"""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli import parse_options
from graft.cli._commands import Handler

METHODS = "dann (adversarial, the default), coral, mmd (feature alignment), rotation (pre-training)"


def register(sub: Any) -> dict[str, Handler]:
    from graft.cli import _fit_parser

    if "fit" in sub.choices:
        _add_options(sub.choices["fit"], command="fit")
    p = _fit_parser(sub, "adapt", "fit on labeled SOURCE data, adapted to unlabeled TARGET images")
    _add_options(p, command="adapt")
    # Alignment acts only where the backbone trains; auto may choose a frozen backbone.
    p.set_defaults(strategy="two_stage")
    return {"adapt": cmd_adapt}


def _add_options(p: argparse.ArgumentParser, *, command: str) -> None:
    g = p.add_argument_group("domain adaptation (target labels are never used to train)")
    if command == "adapt":
        p.add_argument(
            "target",
            help="unlabeled target images: a folder (class folders, if any, are ignored) "
            "or a table of paths",
        )
        g.add_argument("--method", dest="adapt", default="dann", help=METHODS)
    else:
        g.add_argument(
            "--unlabeled",
            help="unlabeled target images (a folder or a table of paths) to adapt to",
        )
        g.add_argument("--adapt", help=f"with --unlabeled: {METHODS}")
    g.add_argument(
        "--adapt-options",
        type=parse_options,
        help="the method's options, e.g. weight=0.5,hidden=256 (DANN), epochs=2,lr=1e-4 (rotation)",
    )
    g.add_argument(
        "--target-eval",
        help="labeled target images used only to report target metrics per epoch and at the "
        "end (never to train or to select weights)",
    )


def adaptation_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``graft.fit`` keywords of the adaptation options (``target`` is ``unlabeled``)."""
    return {
        "unlabeled": getattr(args, "target", None) or getattr(args, "unlabeled", None),
        "adapt": getattr(args, "adapt", None),
        "adapt_options": getattr(args, "adapt_options", None),
        "target_eval": getattr(args, "target_eval", None),
    }


def cmd_adapt(args: argparse.Namespace) -> int:
    from graft.cli import cmd_fit
    from graft.errors import ConfigError

    if args.devices * args.num_nodes > 1:
        raise ConfigError(
            "graft adapt runs in one process; for several use "
            "`graft fit SOURCE --unlabeled TARGET --adapt METHOD --devices N`"
        )
    return cmd_fit(args)
