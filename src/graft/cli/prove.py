"""``graft compare``: from-scratch baselines against transfer on the same splits, one verdict.

Every option is a keyword of :func:`graft.compare` of the same name.
"""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler
from graft.config import DEFAULT_BACKBONE, SPLIT_FRACTION


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.1,0.25,1 got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _compare_parser(sub: Any) -> None:
    from graft.evaluate.arms import ARMS, BUDGETS

    p = sub.add_parser(
        "compare",
        help="is transfer helping? train from-scratch baselines and transfer arms, compare",
    )
    p.add_argument("data", help="image or text folder (root/<class>/*) or CSV/TSV/Parquet table")
    g = p.add_argument_group("data")
    g.add_argument("--task", choices=["classification", "regression", "multilabel"])
    g.add_argument("--label-column", help="table column holding class labels")
    g.add_argument("--target-columns", type=_names, help="regression columns, comma-separated")
    g.add_argument("--path-column", help="table column holding image paths")
    g.add_argument("--text-column", help="table column holding texts: the data are texts")
    g.add_argument("--val-fraction", type=float, default=SPLIT_FRACTION, help="validation share")
    g.add_argument("--test-fraction", type=float, default=SPLIT_FRACTION, help="test share")
    b = p.add_argument_group("backbone")
    b.add_argument("--backbone", default=DEFAULT_BACKBONE, help="the pretrained backbone")
    b.add_argument("--weights", help="local weights file for a timm architecture")
    c = p.add_argument_group("budget (the same for every arm)")
    c.add_argument(
        "--budget",
        default="standard",
        choices=list(BUDGETS),
        help="preset: quick (4 epochs, 64 px, no curve) or standard (12 epochs, curve over "
        "0.1,0.25,0.5,1 x 2 seeds); the options below override it",
    )
    c.add_argument("--epochs", type=int, help="epochs per arm, all its stages together")
    c.add_argument("--lr", type=float, help="base learning rate (the head's)")
    c.add_argument("--batch-size", type=int, help="samples per step")
    c.add_argument("--image-size", type=int, help="input size of the compared backbone")
    c.add_argument(
        "--small-cnn-size", type=int, help="input size of the small CNN (default: the data's)"
    )
    c.add_argument(
        "--max-length", type=int, help="texts: tokens per text for every arm (default: each's own)"
    )
    c.add_argument(
        "--arms", type=_names, help=f"comma-separated contenders among {', '.join(ARMS.names())}"
    )
    c.add_argument(
        "--fractions", type=_floats, help="data-efficiency curve: fractions, e.g. 0.1,0.25,0.5,1"
    )
    c.add_argument("--seeds", type=int, help="data-efficiency curve: subsets per fraction")
    c.add_argument(
        "--curve-arms", type=_names, help="data-efficiency curve: these arms (default: every arm)"
    )
    c.add_argument("--seed", type=int, default=0, help="seed of the splits and every fit")
    c.add_argument(
        "--folds",
        type=int,
        help="repeat on K random stratified splits (small data): mean and spread per arm",
    )
    p.add_argument("--cache-dir", help="feature store shared by the arms")
    p.add_argument("--report", help="write the HTML report there")
    p.add_argument(
        "--no-importance",
        dest="importance",
        action="store_false",
        help="skip measuring layer-group importance",
    )
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars"
    )


KEYS = ("task", "label_column", "target_columns", "path_column", "text_column",
        "val_fraction", "test_fraction", "backbone", "weights", "budget", "epochs", "lr",
        "batch_size", "image_size", "small_cnn_size", "max_length", "arms", "fractions", "seeds", "curve_arms", "seed", "cache_dir", "report",
        "importance", "progress")  # fmt: skip


def cmd_compare(args: argparse.Namespace) -> int:
    from graft.evaluate.compare import compare
    from graft.evaluate.folds import compare_folds

    options = {k: getattr(args, k) for k in KEYS}
    if args.folds:
        result = compare_folds(args.data, folds=args.folds, **options)
    else:
        result = compare(args.data, **options)
    print()
    print(result.table())
    print()
    print(result.verdict)
    if result.calibration is not None:
        print(result.calibration_line())
    print(f"time: {result.seconds:.1f}s")
    if args.report:
        print(f"report: {args.report}")
    return 0


def register(sub: Any) -> dict[str, Handler]:
    _compare_parser(sub)
    return {"compare": cmd_compare}
