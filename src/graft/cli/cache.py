"""``graft cache info|clear``: what the feature store holds, and freeing it.

One to one with :func:`graft.workflows.measure.cache_info` and :func:`graft.workflows.measure.cache_clear`.
"""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("cache", help="stored backbone features: info, clear")
    actions = p.add_subparsers(dest="action", required=True)
    info = actions.add_parser("info", help="entries: backbone, preprocessing, rows, size")
    clear = actions.add_parser("clear", help="delete stored features (all, or one backbone's)")
    clear.add_argument(
        "--backbone", help="only this backbone's entries (name, architecture or identity)"
    )
    for q in (info, clear):
        q.add_argument(
            "--cache-dir",
            help="cache folder given to fit/rank (store in DIR/features; default: $GRAFT_CACHE_DIR)",
        )
    return {"cache": cmd_cache}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def cmd_cache(args: argparse.Namespace) -> int:
    from graft.measure.features import FeatureStore
    from graft.workflows.measure import cache_clear, cache_info

    root = FeatureStore.for_cache_dir(args.cache_dir).root
    if args.action == "clear":
        freed = cache_clear(backbone=args.backbone, cache_dir=args.cache_dir)
        print(f"freed {_size(freed)} in {root}")
        return 0
    entries = cache_info(cache_dir=args.cache_dir)
    print(
        f"feature store: {root} ({len(entries)} entries, {_size(sum(e['bytes'] for e in entries))})"
    )
    for e in entries:
        name = e["backbone"] or e["identity"]
        print(
            f"  {name:<28} {e['rows']:>8} rows  dim {e['dim']}  {_size(e['bytes']):>10}  "
            f"last used {e['last_used']}  {e['entry']}"
        )
    return 0
