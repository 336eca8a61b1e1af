"""``graft lr-find DATA``: learning-rate range test with a suggested rate and a plot.

Its data, backbone and training flags are the :mod:`graft.config` fields of ``graft fit``
(same names, types and help); the defaults match :func:`graft.workflows.fit.lr_find`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from graft.cli._commands import Handler
from graft.cli._flags import add_backbone_options, add_field_flag
from graft.config import DataConfig, TrainConfig

DATA_FIELDS = ("task", "label_column", "label_separator", "target_columns", "path_column")
TRAIN_FIELDS = ("batch_size", "seed", "cache_dir", "progress")
LR_FIND_STRATEGY = "two_stage"


def register(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("lr-find", help="learning-rate range test with a suggested rate and a plot")
    p.add_argument("data", help="image folder or table")
    group = p.add_argument_group("data")
    for f in fields(DataConfig):
        if f.name in DATA_FIELDS:
            add_field_flag(group, f, f.name, suppress=False)
    add_backbone_options(p)
    p.add_argument("--strategy", default=LR_FIND_STRATEGY, help="whose plan to test")
    p.add_argument("--stage", type=int, default=0, help="stage of the plan to test (0 = first)")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--plot", default="lr-find.png", help="where to write the plot (PNG)")
    group = p.add_argument_group("training")
    for f in fields(TrainConfig):
        if f.name in TRAIN_FIELDS:
            add_field_flag(group, f, f.name, suppress=False)
    return {"lr-find": cmd_lr_find}


def cmd_lr_find(args: argparse.Namespace) -> int:
    from graft.workflows.fit import lr_find

    names = (*DATA_FIELDS, *TRAIN_FIELDS, "backbone", "weights", "pretrained", "image_size")
    result = lr_find(
        args.data,
        strategy=args.strategy,
        stage=args.stage,
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        steps=args.steps,
        plot=args.plot,
        **{k: getattr(args, k) for k in names},
    )
    print(f"suggested learning rate: {result.suggestion:.2e}  (tested {len(result.lrs)} rates)")
    print(f"plot: {args.plot}")
    return 0
