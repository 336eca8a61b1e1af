"""CLI flags generated from the run configuration (:mod:`graft.config`), torch-free.

Every flag's name, type, choices, default and help come from one config field; only the flags
the user gives reach the Namespace (``argparse.SUPPRESS``), so they can override a saved
configuration (``--config``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import Field
from typing import Any

from graft.config import field_default, flag_name, flat_name, iter_fields


def parse_options(text: str) -> dict[str, Any]:
    """``key=value,...`` with numbers as int or float and other values as strings."""
    out: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value,... got {text!r}")
        out[key.strip().replace("-", "_")] = _number(value.strip())
    return out


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_weights(text: str) -> dict[str, float]:
    """``name=weight,...`` as floats."""
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected name=weight,... got {text!r}") from None


def parse_top(text: str) -> int | str:
    """``--top``: a number of layer groups, or ``all``."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or all, got {text!r}") from None


PARSERS: dict[str, Any] = {
    "top": parse_top,
    "options": parse_options,
    "weights": parse_weights,
    "list": lambda s: s.split(","),
}


def _kind(f: Field[Any]) -> Any:
    parse = f.metadata.get("parse")
    if parse in PARSERS:
        return PARSERS[parse]
    text = str(f.type)
    return int if text.startswith("int") else float if text.startswith("float") else str


def add_field_flag(
    group: Any, f: Field[Any], dest: str, flag: str | None = None, *, suppress: bool = True
) -> str:
    """Add one field's flag to ``group``; returns the flag (``--no-x`` for a true default).

    Args:
        suppress: leave the flag out of the Namespace unless given (else the field's default).
    """
    default = field_default(f)
    cli_default = f.metadata.get("cli_default", default)
    flag = flag or flag_name(f)
    shown = f" (default: {cli_default})" if cli_default not in (None, False, True) else ""
    common = {"dest": dest, "default": argparse.SUPPRESS if suppress else cli_default}
    if isinstance(default, bool):
        if f.metadata.get("both"):  # --x and --no-x, the same on every command
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, help=f.metadata["help"], **common
            )
            return flag
        if default:
            flag = "--no-" + flag.removeprefix("--")
            group.add_argument(
                flag, action="store_false", help="turn off: " + f.metadata["help"], **common
            )
        else:
            group.add_argument(flag, action="store_true", help=f.metadata["help"], **common)
        return flag
    action = "append" if f.metadata.get("parse") == "append" else "store"
    kind = {} if action == "append" else {"type": _kind(f)}
    group.add_argument(
        flag, action=action, choices=f.metadata.get("choices"), help=f.metadata["help"] + shown,
        **kind, **common,
    )  # fmt: skip
    return flag


def add_config_flags(
    parser: argparse.ArgumentParser,
    config: type,
    *,
    skip: Iterable[str] = (),
    flags: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Flags for every leaf field of ``config``, grouped by section; returns flag -> flat name.

    Args:
        skip: flat names given another way (e.g. a positional argument).
        flags: flat name -> flag, where a command spells a flag differently.
    """
    groups: dict[str, Any] = {}
    made: dict[str, str] = {}
    for path, f in iter_fields(config):
        name = flat_name(path)
        if name in set(skip) or f.metadata.get("api_only"):
            continue
        section = path[0] if len(path) > 1 else config.__name__
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
        made[add_field_flag(groups[section], f, name, (flags or {}).get(name))] = name
    return made


def add_backbone_options(parser: argparse.ArgumentParser) -> None:
    """The backbone flags of ``graft fit`` (with their defaults) for other commands."""
    from dataclasses import fields

    from graft.config import BackboneConfig

    group = parser.add_argument_group("backbone")
    for f in fields(BackboneConfig):
        if f.name != "dropout":
            add_field_flag(group, f, f.name, suppress=False)
