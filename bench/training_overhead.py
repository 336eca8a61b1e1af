"""graft's training step against a bare PyTorch loop: same model, batches and optimizer.

Run by hand:  python bench/training_overhead.py [--steps 30] [--image-size 96] [--threads 2]

Both loops train the bundled EfficientNet-Lite0 with a new head, the top two layer groups
unfrozen (two-stage's second stage), on the same in-memory batches of real digits, with AdamW.
graft's side is its real loop (`_StageRunner._train_epoch`: Accelerate wrappers, BatchNorm
re-freezing after `model.train()`, the NaN check, the schedule step); the baseline is the
textbook loop (which also keeps frozen BatchNorm in eval mode, so both do the same arithmetic). Prints seconds per step for both and the overhead ratio (target: <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import time

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
    model: torch.nn.Module, stage: object, data: list, opt: torch.optim.Optimizer
) -> float:
    from graft.training.loop import TrainConfig, make_accelerator
    from graft.training.schedules import ScheduleConfig, build_scheduler
    from graft.training.stage import StageRunner

    cfg = TrainConfig(progress=False)
    acc = make_accelerator(cfg)
    runner = StageRunner(model, stage, 1, acc, cfg, on_features=False)  # type: ignore[arg-type]
    sched = build_scheduler(opt, len(data) * 100, ScheduleConfig())
    module, opt = acc.prepare(model, opt)
    start = time.perf_counter()
    runner._train_epoch(module, opt, sched, data, 1)
    return (time.perf_counter() - start) / len(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
