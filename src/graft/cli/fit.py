"""``graft fit DATA``: transfer a pretrained backbone to your data.

Every flag but ``--config`` and the scale-out flags is a field of :class:`graft.config.FitConfig`
(generated from it); ``--config MODEL_DIR_OR_JSON`` starts from a saved run's configuration and
the flags given override it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from graft.cli._commands import Handler
from graft.cli._flags import add_config_flags
from graft.config import DistributedConfig, FitConfig, flat_fields

DISTRIBUTED = ("devices", "num_nodes", "node_rank", "master_addr", "master_port")


def fit_parser(sub: Any, name: str, summary: str, **flags: Any) -> argparse.ArgumentParser:
    """A ``fit``-like parser: DATA, ``--config``, the FitConfig flags and the scale-out flags."""
    p = sub.add_parser(name, help=summary, description=summary)
    p.add_argument("data", help="image folder (root/<class>/*) or CSV/Parquet table")
    p.add_argument(
        "--config",
        dest="config_from",
        help="start from this run configuration: a saved model folder or a JSON file "
        "(flags given here override it)",
    )
    add_config_flags(p, FitConfig, **flags)
    add_config_flags(p, DistributedConfig)
    return p


def register(sub: Any) -> dict[str, Handler]:
    fit_parser(sub, "fit", "transfer a pretrained backbone to your data")
    return {"fit": cmd_fit}


def config_from_args(args: argparse.Namespace, base: FitConfig | None = None) -> FitConfig:
    """The run configuration: ``--config`` (or ``base``), then every flag given."""
    names = flat_fields()
    given = {k: v for k, v in vars(args).items() if k in names}
    if "freeze_patterns" in given:
        given["freeze_patterns"] = tuple(given["freeze_patterns"])
    start = FitConfig.load(args.config_from) if args.config_from else (base or FitConfig())
    config = start.with_overrides(**given)
    if config.output.out is None and not config.output.dry_run:
        config = config.with_overrides(out="graft-runs/model")  # the command always saves
    if config.output.dry_run:
        config = config.with_overrides(out=None)
    return config


def distributed_from_args(args: argparse.Namespace) -> DistributedConfig:
    return DistributedConfig(**{k: getattr(args, k) for k in DISTRIBUTED if hasattr(args, k)})


def run_fit(args: argparse.Namespace, config: FitConfig) -> int:
    """Train (relaunched under torchrun for several processes), then print the metrics."""
    launched = launch_distributed(distributed_from_args(args), getattr(args, "argv", []))
    if launched is not None:
        return launched
    import time

    from graft.workflows.fit import fit, is_main_process

    started = time.perf_counter()
    model = fit(args.data, config)
    if config.output.dry_run or not is_main_process():
        return 0
    record = model.record
    print_metrics(record.metrics)
    total = time.perf_counter() - started  # everything: data, training, reports, saving
    print(f"saved: {config.output.out}  ({total:.1f}s in all)")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    return run_fit(args, config_from_args(args))


def print_metrics(metrics: dict[str, dict[str, float]]) -> None:
    from graft.metrics import format_metrics

    for split, values in metrics.items():
        print(f"{split} metrics:")
        print(format_metrics(values))


def launch_distributed(dist: DistributedConfig, argv: Sequence[str]) -> int | None:
    """Re-run this command under torchrun when more than one process is asked for."""
    import os
    import subprocess

    if dist.processes <= 1 or "LOCAL_RANK" in os.environ:
        return None
    drop = {"--" + k.replace("_", "-") for k in DISTRIBUTED}
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
        sys.executable, "-m", "torch.distributed.run",
        f"--nproc-per-node={dist.devices}", f"--nnodes={dist.num_nodes}",
        f"--node-rank={dist.node_rank}", f"--master-addr={dist.master_addr}",
        f"--master-port={dist.master_port}", "-m", "graft.cli", *rest,
    ]  # fmt: skip
    return subprocess.call(cmd)
