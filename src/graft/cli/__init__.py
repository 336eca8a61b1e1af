"""The ``graft`` command: thin; every option maps to an API argument of the same name.

A mistake in the user's input (a GraftError) prints one line and exits with status 2; a
traceback means a bug in graft.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from graft import __version__

STRATEGY_OPTIONS = (
    "top",
    "fraction",
    "lr_factor",
    "head_epochs",
    "layer_decay",
    "patience",
    "bn",
    "freeze_patterns",
    "max_groups",
    "lr_decay",
    "stage_epochs",
)


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--task",
        choices=["classification", "regression", "multilabel", "multitask"],
        help="inferred when omitted (folders: classification)",
    )
    g.add_argument("--label-column", help="table column holding class labels")
    g.add_argument(
        "--label-separator", help="multilabel: separator of labels in a cell (default ;)"
    )
    g.add_argument(
        "--loss-weights",
        type=_parse_weights,
        help="multitask: loss weight per task, e.g. species=1,weight=0.5",
    )
    g.add_argument(
        "--target-columns", type=lambda s: s.split(","), help="regression columns, comma-separated"
    )
    g.add_argument("--path-column", help="table column holding image paths (relative to the table)")
    g.add_argument(
        "--val-fraction",
        type=float,
        default=0.15,
        help="validation share when no val split is given",
    )
    g.add_argument(
        "--test-fraction", type=float, default=0.15, help="test share when no test split is given"
    )
    g.add_argument(
        "--strict", action="store_true", help="stop at an unreadable image instead of skipping it"
    )


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


def _parse_weights(text: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected name=weight,... got {text!r}") from None


def _add_backbone_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backbone")
    g.add_argument(
        "--backbone",
        default="efficientnet_lite0",
        help="bundled name, timm:<name>, or a bare timm name (see `graft models`)",
    )
    g.add_argument(
        "--weights", help="local weights file (safetensors or state dict) for a timm architecture"
    )
    g.add_argument(
        "--no-pretrained",
        dest="pretrained",
        action="store_false",
        help="random initialisation (only when you want it)",
    )
    g.add_argument("--image-size", type=int, help="override the backbone's input size (square)")


def _fit_parser(
    sub: Any, name: str = "fit", summary: str = "transfer a pretrained backbone to your data"
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=summary)
    p.add_argument("data", help="image folder (root/<class>/*) or CSV/Parquet table")
    _add_data_options(p)
    _add_backbone_options(p)
    g = p.add_argument_group("strategy")
    g.add_argument(
        "--strategy",
        default="auto",
        help="auto (the advisor measures your data and picks; the default), "
        "feature-extraction, fine-tune-top, full, two-stage, progressive",
    )
    g.add_argument("--epochs", type=int, default=5, help="epochs per stage")
    g.add_argument("--lr", type=float, default=1e-3, help="base learning rate (the head's)")
    g.add_argument("--top", type=int, help="layer groups to unfreeze, counted from the head")
    g.add_argument("--fraction", type=float, help="fraction of layer groups to unfreeze")
    g.add_argument(
        "--lr-factor", type=float, help="fine-tuning rate as a fraction of --lr (0.01-0.1)"
    )
    g.add_argument("--head-epochs", type=int, help="epochs of the head-only stage (two-stage)")
    g.add_argument(
        "--layer-decay",
        type=float,
        help="discriminative rates: factor per group from the head down",
    )
    g.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    g.add_argument(
        "--bn",
        choices=["frozen", "eval", "train", "train_bn_only"],
        help="BatchNorm policy: frozen (frozen parts in inference mode, default), eval (every "
        "BatchNorm in inference mode; small data), train, train_bn_only",
    )
    g.add_argument(
        "--freeze",
        dest="freeze_patterns",
        action="append",
        help="never train parameters matching this pattern",
    )
    g.add_argument(
        "--max-groups", type=int, help="progressive: stop after unfreezing this many groups"
    )
    g.add_argument(
        "--lr-decay", type=float, help="progressive: rate factor from one stage to the next"
    )
    g.add_argument("--stage-epochs", type=int, help="progressive: epochs per stage")
    _add_dataclass_options(p.add_argument_group("training"), "graft.training.loop", "TrainConfig")
    _add_dataclass_options(
        p.add_argument_group("schedule"), "graft.training.schedules", "ScheduleConfig"
    )
    from graft.protect.options import add_options as add_forgetting_options

    add_forgetting_options(p)
    p.add_argument("--dropout", type=float, default=0.0, help="dropout before the head")
    p.add_argument("--out", default="graft-runs/model", help="where to save the trained model")
    p.add_argument("--report", help="write an HTML report there (plan, metrics, curves, plots)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    d = p.add_argument_group("scale-out (DDP through Accelerate; see the README)")
    d.add_argument(
        "--devices", type=int, default=1, help="processes (GPUs, or CPU workers) on this machine"
    )
    d.add_argument("--num-nodes", type=int, default=1, help="machines taking part")
    d.add_argument("--node-rank", type=int, default=0, help="this machine's rank (multi-node)")
    d.add_argument("--master-addr", default="127.0.0.1", help="address of the rank-0 machine")
    d.add_argument("--master-port", type=int, default=29500, help="port on the rank-0 machine")
    return p


def docstring_args(obj: Any) -> dict[str, str]:
    """``name: help`` pairs from a Google-style ``Args:`` section (one source for help text)."""
    import inspect
    import re

    doc = inspect.getdoc(obj) or ""
    out: dict[str, str] = {}
    current = None
    for line in doc.split("Args:", 1)[-1].splitlines():
        m = re.match(r"^\s*(\w+): (.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return out


TRAIN_DESTS: list[str] = []


def _add_dataclass_options(group: Any, module: str, name: str) -> None:
    """CLI flags from a config dataclass: same names in kebab-case, help from its docstring."""
    import dataclasses
    import importlib

    cls = getattr(importlib.import_module(module), name)
    helps = docstring_args(cls)
    for f in dataclasses.fields(cls):
        if f.name == "schedule":
            continue
        dest = "schedule" if (name == "ScheduleConfig" and f.name == "name") else f.name
        flag = "--" + dest.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = helps.get(f.name, "") + (
            f" (default: {default})" if default not in (None, False) else ""
        )
        TRAIN_DESTS.append(dest)
        if isinstance(default, bool):
            negated = "--no-" + dest.replace("_", "-")
            if default:
                group.add_argument(
                    negated,
                    dest=dest,
                    action="store_false",
                    help="turn off: " + helps.get(f.name, ""),
                )
            else:
                group.add_argument(flag, dest=dest, action="store_true", help=help_text)
            continue
        kind = {int: int, float: float}.get(type(default), str)
        if "float | None" in str(f.type):
            kind = float
        group.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)


def launch_distributed(args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """Re-run this command under torchrun when more than one process is asked for."""
    import os
    import subprocess

    if args.devices * args.num_nodes <= 1 or "LOCAL_RANK" in os.environ:
        return None
    drop = {"--devices", "--num-nodes", "--node-rank", "--master-addr", "--master-port"}
    rest: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a.split("=", 1)[0] in drop:
            skip = "=" not in a
            continue
        rest.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={args.devices}",
        f"--nnodes={args.num_nodes}",
        f"--node-rank={args.node_rank}",
        f"--master-addr={args.master_addr}",
        f"--master-port={args.master_port}",
        "-m",
        "graft.cli",
        *rest,
    ]
    return subprocess.call(cmd)


def cmd_fit(args: argparse.Namespace) -> int:
    import graft

    opts = {k: getattr(args, k) for k in STRATEGY_OPTIONS if getattr(args, k, None) is not None}
    if "freeze_patterns" in opts:
        opts["freeze_patterns"] = tuple(opts["freeze_patterns"])
    keys = ("task", "backbone", "weights", "pretrained", "strategy", "epochs", "lr", "image_size",
            "label_column", "target_columns", "path_column", "val_fraction", "test_fraction",
            "dropout", "strict", "dry_run", "label_separator", "loss_weights",
            "report")  # fmt: skip
    kwargs = {k: getattr(args, k) for k in keys}
    kwargs.update({k: getattr(args, k) for k in TRAIN_DESTS if getattr(args, k) is not None})
    from graft.cli.adapt import adaptation_kwargs

    kwargs.update(adaptation_kwargs(args))
    from graft.protect.options import fit_kwargs as forgetting_kwargs

    kwargs.update(forgetting_kwargs(args))
    model = graft.fit(
        args.data, out=None if args.dry_run else args.out, strategy_options=opts, **kwargs
    )
    from graft.workflows.fit import is_main_process

    if args.dry_run or not is_main_process():
        return 0
    _print_metrics(model.info.get("metrics", {}))
    print(f"saved: {args.out}  ({model.info.get('seconds', 0):.1f}s)")
    return 0


def _print_metrics(metrics: dict[str, dict[str, float]]) -> None:
    from graft.tasks.metrics import format_metrics

    for split, values in metrics.items():
        print(f"{split} metrics:")
        print(format_metrics(values))


def _predict_parser(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict image files with a saved model")
    p.add_argument("model", help="a saved model folder")
    p.add_argument("files", nargs="+", help="image files or folders")
    p.add_argument(
        "--output", "-o", help="write predictions here (.csv or .json); default: CSV to stdout"
    )
    p.add_argument(
        "--format", choices=["csv", "json"], help="output format (default from --output's suffix)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--mc-samples",
        type=int,
        default=0,
        help="MC dropout: predict each file N times with dropout on; report mean and spread",
    )


def cmd_predict(args: argparse.Namespace) -> int:
    import graft
    from graft.io import write_records

    model = graft.load(args.model)
    rows = model.predict(args.files, batch_size=args.batch_size, mc_samples=args.mc_samples)
    write_records(rows, args.output, fmt=args.format)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return 0


def _evaluate_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="metrics of a saved model on labelled data")
    p.add_argument("model", help="a saved model folder")
    p.add_argument(
        "data",
        help="image folder or table: its test split (the training data is split as in "
        "training), else all files",
    )
    p.add_argument("--split", choices=["train", "val", "test"], help="evaluate this split only")
    p.add_argument("--batch-size", type=int, default=64)


def cmd_evaluate(args: argparse.Namespace) -> int:
    import graft

    model = graft.load(args.model)
    _print_metrics(
        {"evaluation": model.evaluate(args.data, split=args.split, batch_size=args.batch_size)}
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from graft.backbones import USAGE, list_bundled

    print("bundled backbones (work offline):")
    for entry in list_bundled():
        print(f"  {entry['name']:<22} {entry.get('description', '')}")
    print()
    print(USAGE)
    return 0


def _demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="transfer the bundled backbone to real handwritten digits")
    p.add_argument("--out", default="graft-demo", help="folder for the data and the model")
    p.add_argument(
        "--epochs", type=int, default=None, help="epochs per stage (default: the demo's budget)"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from graft.workflows.demo import run_demo

    run_demo(args.out, epochs=args.epochs)
    return 0


def _lr_find_parser(sub: Any) -> None:
    p = sub.add_parser("lr-find", help="learning-rate range test with a suggested rate and a plot")
    p.add_argument("data", help="image folder or table")
    p.add_argument("--task", choices=["classification", "regression"])
    _add_backbone_options(p)
    p.add_argument("--strategy", default="two_stage", help="whose plan to test")
    p.add_argument("--stage", type=int, default=0, help="stage of the plan to test (0 = first)")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--plot", default="lr-find.png", help="where to write the plot (PNG)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", help="feature store folder")


def cmd_lr_find(args: argparse.Namespace) -> int:
    from graft.workflows.fit import lr_find

    result = lr_find(
        args.data,
        task=args.task,
        backbone=args.backbone,
        weights=args.weights,
        pretrained=args.pretrained,
        image_size=args.image_size,
        strategy=args.strategy,
        stage=args.stage,
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        steps=args.steps,
        plot=args.plot,
        batch_size=args.batch_size,
        seed=args.seed,
        cache_dir=args.cache_dir,
        progress=False,
    )
    print(f"suggested learning rate: {result.suggestion:.2e}  (tested {len(result.lrs)} rates)")
    print(f"plot: {args.plot}")
    return 0


COMMANDS = {
    "fit": cmd_fit,
    "predict": cmd_predict,
    "evaluate": cmd_evaluate,
    "models": cmd_models,
    "lr-find": cmd_lr_find,
    "demo": cmd_demo,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graft", description="Transfer learning that measures before it trains."
    )
    parser.add_argument("--version", action="version", version=f"graft {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _fit_parser(sub)
    _predict_parser(sub)
    _evaluate_parser(sub)
    sub.add_parser("models", help="list bundled backbones and how to use any timm model")
    _demo_parser(sub)
    _lr_find_parser(sub)
    from graft.cli._commands import register_all

    COMMANDS.update(register_all(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from graft._registry import UnknownNameError
    from graft.errors import GraftError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "fit":
        launched = launch_distributed(args, argv)
        if launched is not None:
            return launched
    try:
        return COMMANDS[args.command](args)
    except (GraftError, UnknownNameError) as e:
        print(f"graft: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graft: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
