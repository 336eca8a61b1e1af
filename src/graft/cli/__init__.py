"""The ``graft`` command: thin; every option maps to a field of :mod:`graft.config` or an API
argument of the same name. The commands live one per module, registered in
:mod:`graft.cli._commands`.

A mistake in the user's input (a GraftError) prints one line and exits with status 2; a
traceback means a bug in graft.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from graft import __version__
from graft.cli._commands import Handler, register_all
from graft.cli._flags import parse_options

COMMANDS: dict[str, Handler] = {}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (torch-free)."""
    parser = argparse.ArgumentParser(
        prog="graft", description="Transfer learning that measures before it trains."
    )
    parser.add_argument("--version", action="version", version=f"graft {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    COMMANDS.update(register_all(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``graft`` with ``argv`` (default: the process's arguments); returns the exit status."""
    from graft._registry import UnknownNameError
    from graft.errors import GraftError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return COMMANDS[args.command](args)
    except (GraftError, UnknownNameError) as e:
        print(f"graft: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"graft: interrupted{_resume_hint(args, argv)}", file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace | None, argv: list[str]) -> str:
    """How to continue an interrupted training run (empty for other commands)."""
    from pathlib import Path

    if args is None or not hasattr(args, "config_from") or getattr(args, "dry_run", False):
        return ""  # only fit-like commands (fit_parser) train with checkpoints
    out = getattr(args, "out", None) or "graft-runs/model"
    folder = getattr(args, "checkpoint_dir", None) or f"{out}.ckpt"
    again = " ".join(["graft", *argv, *([] if "--resume" in argv else ["--resume"])])
    if (Path(folder) / "last").is_dir():
        return f"; the last finished epoch is saved in {folder}: continue with `{again}`"
    return "; no epoch had finished, nothing to resume: run the same command again"


__all__ = ["COMMANDS", "build_parser", "main", "parse_options"]

if __name__ == "__main__":
    sys.exit(main())
