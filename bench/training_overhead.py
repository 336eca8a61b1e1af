"""graft's training step against a bare PyTorch loop, and the speed of the training layouts.

Run by hand:  python bench/training_overhead.py [--steps 30] [--image-size 96] [--threads 2]
              python bench/training_overhead.py --layouts [--quick]

``--layouts`` (issue 14, item 6) times graft's real loop on the same batches in four settings
for stages that train the backbone: fp32, ``--channels-last``, ``--mixed-precision bf16`` (bfloat16
autocast) and both; then fine-tunes the whole network on digits (``full``, same seed) in each
setting and prints the test accuracy beside the speed, so a faster setting is adopted only where
accuracy holds (one seed: differences under a few points are noise at this size).
Each setting runs in a fresh process (Accelerate fixes the precision once per process).
``--quick`` is a smoke run (a few steps, one short fit): its numbers are not a measurement.

Both loops train the bundled EfficientNet-Lite0 with a new head, the top two layer groups
unfrozen (two-stage's second stage), on the same in-memory batches of real digits, with AdamW.
graft's side is its real loop (`_StageRunner._train_epoch`: Accelerate wrappers, BatchNorm
re-freezing after `model.train()`, the NaN check, the schedule step); the baseline is the
textbook loop (which also keeps frozen BatchNorm in eval mode, so both do the same arithmetic). Prints seconds per step for both and the overhead ratio (target: <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F


def batches(n_batches: int, batch_size: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images[: n_batches * batch_size], dtype=torch.float32) / 16
    x = F.interpolate(x[:, None], size=(size, size), mode="bilinear").repeat(1, 3, 1, 1)
    y = torch.as_tensor(digits.target[: n_batches * batch_size])
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


def build(size: int) -> tuple[torch.nn.Module, object, object]:
    from graft.backbones import create as make_backbone
    from graft.model import GraftModel
    from graft.tasks import Classification
    from graft.training.params import apply_trainable
    from graft.workflows.fit import make_plan

    torch.manual_seed(0)
    model = GraftModel(
        make_backbone("efficientnet_lite0", image_size=size),
        Classification.spec_for([str(i) for i in range(10)]),
    )
    plan = make_plan(model, "two_stage", epochs=1, lr=1e-3, top=2)
    stage = plan.stages[1]
    apply_trainable(model, stage)
    return model, plan, stage


def bare_loop(model: torch.nn.Module, data: list, opt: torch.optim.Optimizer) -> float:
    frozen_bn = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters())
    ]
    start = time.perf_counter()
    model.train()
    for m in frozen_bn:  # a careful hand-written loop keeps frozen BatchNorm in eval mode too
        m.eval()
    total = 0.0
    for x, y in data:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        total += loss.item()
    return (time.perf_counter() - start) / len(data)


def graft_loop(
    model: torch.nn.Module,
    stage: object,
    data: list,
    opt: torch.optim.Optimizer,
    setting: str = "fp32",
) -> float:
    from graft.training.loop import TrainConfig, make_accelerator, memory_layout
    from graft.training.schedules import ScheduleConfig, build_scheduler
    from graft.training.stage import StageRunner

    cfg = TrainConfig(progress=False, **SETTINGS[setting])
    acc = make_accelerator(cfg)
    memory_layout(model, cfg.channels_last)  # type: ignore[arg-type]
    runner = StageRunner(model, stage, 1, acc, cfg, on_features=False)  # type: ignore[arg-type]
    sched = build_scheduler(opt, len(data) * 100, ScheduleConfig())
    module, opt = acc.prepare(model, opt)
    start = time.perf_counter()
    runner._train_epoch(module, opt, sched, data, 1)
    return (time.perf_counter() - start) / len(data)


#: The training settings --layouts compares: TrainConfig fields, one source of truth.
SETTINGS: dict[str, dict[str, Any]] = {
    "fp32": {"channels_last": False},
    "channels_last": {"channels_last": True},
    "bf16": {"mixed_precision": "bf16", "channels_last": False},
    "channels_last+bf16": {"channels_last": True, "mixed_precision": "bf16"},
}


def one_setting(args: argparse.Namespace) -> None:
    """Child process: seconds per step and digits test accuracy for ``args.setting``, as JSON."""
    import tempfile

    import graft
    from graft.data.digits import write_digits
    from graft.training.params import param_groups

    data = batches(args.steps, args.batch_size, args.image_size)
    times = []
    for _ in range(args.repeats):
        model, _, stage = build(args.image_size)
        opt = torch.optim.AdamW(param_groups(model, stage, weight_decay=1e-4))  # type: ignore[arg-type]
        times.append(graft_loop(model, stage, data, opt, args.setting))
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_digits(Path(tmp) / "digits", per_class=args.per_class, seed=0)
        start = time.perf_counter()
        fitted = graft.fit(
            folder, backbone="efficientnet_lite0", strategy="full", epochs=args.epochs,
            image_size=args.image_size, seed=0, cache_dir=str(Path(tmp) / "cache"),
            progress=False, log=lambda s: None, **SETTINGS[args.setting],
        )  # fmt: skip
        fit_s = time.perf_counter() - start
    result = {
        "s_per_step": statistics.median(times),
        "test_accuracy": fitted.record.metrics["test"]["accuracy"],
        "fit_s": fit_s,
    }
    print("RESULT " + json.dumps(result))


def layouts(args: argparse.Namespace) -> None:
    """One child process per setting; a table of speed and accuracy."""
    rows = {}
    for name in SETTINGS:
        cmd = [sys.executable, __file__, "--setting", name, *sys.argv[1:]]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows[name] = json.loads(out.split("RESULT ", 1)[1])
    base = rows["fp32"]["s_per_step"]
    print(
        f"layouts: {args.steps} steps x batch {args.batch_size} at {args.image_size}px, "
        f"{args.threads} threads, median of {args.repeats}; digits fit: full, "
        f"{args.epochs} epochs, {args.per_class} per class, seed 0"
    )
    print("| setting | s/step | speed-up | test accuracy | fit s |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['s_per_step']:.4f} | {base / r['s_per_step']:.2f}x "
            f"| {r['test_accuracy']:.3f} | {r['fit_s']:.1f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layouts", action="store_true", help="compare channels-last and bf16")
    ap.add_argument("--epochs", type=int, default=6, help="--layouts: epochs of the digits fit")
    ap.add_argument("--per-class", type=int, default=60, help="--layouts: digits per class")
    ap.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    ap.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    if args.quick:
        args.steps, args.repeats, args.epochs, args.per_class = 3, 1, 2, 15
        args.image_size = min(args.image_size, 64)
    torch.set_num_threads(args.threads)
    if args.setting:
        one_setting(args)
        return
    if args.layouts:
        layouts(args)
        return
    data = batches(args.steps, args.batch_size, args.image_size)
    from graft.training.params import param_groups

    results: dict[str, list[float]] = {"bare": [], "graft": []}
    for r in range(args.repeats):
        for name in ("bare", "graft") if r % 2 == 0 else ("graft", "bare"):
            model, _, stage = build(args.image_size)
            opt = torch.optim.AdamW(param_groups(model, stage, weight_decay=1e-4))  # type: ignore[arg-type]
            fn = (
                bare_loop(model, data, opt)
                if name == "bare"
                else graft_loop(model, stage, data, opt)
            )
            results[name].append(fn)
    bare, ours = statistics.median(results["bare"]), statistics.median(results["graft"])
    print(
        f"steps {args.steps} x batch {args.batch_size} at {args.image_size}px, {args.threads} threads, "
        f"median of {args.repeats}"
    )
    print(f"{'loop':<8}{'s/step':>10}")
    print(f"{'bare':<8}{bare:>10.4f}")
    print(f"{'graft':<8}{ours:>10.4f}")
    print(f"overhead ratio graft/bare: {ours / bare:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
