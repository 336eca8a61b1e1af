"""The one training loop: runs a plan stage by stage over Hugging Face Accelerate.

For each stage the loop sets ``requires_grad`` from the stage's multipliers, builds a fresh
optimizer (and schedule) from its parameter groups, and after every ``model.train()`` puts
BatchNorm layers back in inference mode as the stage's policy says (the default ``auto``: every
one of a pretrained backbone, see :func:`graft.training.params.bn_policy`). A stage whose backbone is entirely frozen
trains the head on stored features (:class:`~graft.measure.features.FeatureStore`): the backbone runs
once per file, ever. Each epoch is seeded from (seed, stage, epoch), so a run resumed from its
last checkpoint ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.config import TrainConfig
from graft.data.base import Dataset
from graft.errors import ConfigError
from graft.model import GraftModel
from graft.strategies.base import Plan, Stage
from graft.training.checkpoint import (
    check_fingerprint,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
)
from graft.training.extensions import Extension, restore_states, setup_stage
from graft.training.loaders import constant_features_note, feature_loaders, image_loaders
from graft.training.logs import EpochLogger
from graft.training.params import apply_trainable
from graft.training.stage import Callback, StageRunner, StepHook, epoch_seed, monitor_of


def make_accelerator(cfg: TrainConfig) -> Any:
    import os

    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    # Accelerate runs multi-process CPU training (gloo) only when told the device is the CPU.
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(
        cpu=cfg.cpu or (distributed and not torch.cuda.is_available()),
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        # Each global batch is split across processes, so N processes compute the gradient of
        # the same batches as one process: results match a single-process run.
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )


def train(
    model: GraftModel,
    plan: Plan,
    data: Dataset,
    cfg: TrainConfig,
    *,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Callback] = (),
    extensions: Sequence[Extension] = (),
    step_hooks: Sequence[StepHook] = (),
) -> list[dict[str, Any]]:
    """Run every stage of ``plan`` on ``data``; return the per-epoch history.

    ``extensions`` (:mod:`graft.training.extensions`: regularizers, domain adaptation, target
    reports) add their loss in the stages that run the backbone where their ``setup`` does not
    answer False; stages on stored features train the head alone. Every extension's
    ``on_epoch`` sees each epoch's row before the checkpoint (which keeps what it adds, e.g.
    ``target_*`` metrics), then ``callbacks`` see it, then the log writes it. ``step_hooks``
    see every step's loss (:data:`~graft.training.stage.StepHook`); one answering True ends
    the run there.
    """
    accelerator = make_accelerator(cfg)
    if accelerator.num_processes > 1:
        log(f"distributed: {accelerator.num_processes} processes ({accelerator.distributed_type})")
    model.to(accelerator.device)
    memory_layout(model, cfg.channels_last)
    _setup_class_weights(model, data, cfg)
    fingerprint = run_fingerprint(model, plan)
    resume = _load_resume(model, cfg, log, fingerprint)
    history: list[dict[str, Any]] = list(resume.get("history", []))
    logger = EpochLogger(cfg.log_csv, cfg.tensorboard, accelerator.is_main_process)
    steps = 0  # what step hooks count
    keeper = _PlanBest(model, cfg, history, resume.get("plan_best"))
    # The head's first stage on stored features starts from the head fitted to convergence.
    first_head = next(
        (i for i, s in enumerate(plan.stages) if s.epochs and on_stored_features(s, cfg)), None
    )
    for index, stage in enumerate(plan.stages):
        if stage.epochs == 0 or index < resume.get("stage", 0):
            continue
        state = resume if index == resume.get("stage") else {}
        trainable = apply_trainable(model, stage)
        pretext = stage.kind == "pretext"
        on_features = on_stored_features(stage, cfg)
        where = "stored features" if on_features else f"{model.backbone.input_kind}s"
        where = "unlabeled images (pretext)" if pretext else where
        log(
            f"stage {index + 1}/{len(plan.stages)} {stage.name}: {trainable:,} trainable parameters, on {where}"
        )
        generator = torch.Generator()
        if pretext:
            active = _pretext_extension(extensions, model, stage, accelerator)
            loaders = (active[0].pretext_loader(model, generator), None)
        elif on_features:
            loaders = feature_loaders(model, data, cfg, accelerator, generator)
            note = constant_features_note(loaders[0].dataset, model)
            if note:
                log(note)
        else:
            loaders = image_loaders(model, data, cfg, generator)
        if not pretext:
            active = [] if on_features else setup_stage(extensions, model, stage, accelerator)
        restore_states(extensions, state)  # every extension: a later stage may need it
        runner = StageRunner(
            model, stage, index, accelerator, cfg, on_features, active, generator,
            step_hooks=step_hooks, first_step=steps,
            linear_start=cfg.linear_start and index == first_head,
        )  # fmt: skip
        runner.saved = list(extensions)
        runner.fingerprint = fingerprint
        runner.plan_best = keeper.snapshot
        rows = runner.run(
            # Extensions and callbacks may add columns to a row: the log writes it last.
            *loaders,
            state=state,
            history=history,
            log=log,
            hooks=[*callbacks, logger.log],
        )
        history += rows
        steps = runner.step
        keeper.end_stage(stage, rows, log, is_main=accelerator.is_main_process)
        accelerator.free_memory()
        if runner.stopped:
            break
    logger.close()
    memory_layout(model, False)  # saved weights (safetensors) must be contiguous
    model.eval()
    return history


def memory_layout(model: GraftModel, channels_last: bool) -> None:
    """Put an image model's 4-d weights in channels-last layout (``--channels-last``), or back.

    Convolutions whose weights are channels-last run in that layout (PyTorch propagates it to
    their inputs and outputs); text models are left as they are.
    """
    if model.backbone.input_kind == "image":
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def on_stored_features(stage: Stage, cfg: TrainConfig) -> bool:
    """Whether ``stage`` trains on stored features: its backbone frozen and the store in use."""
    return stage.kind != "pretext" and cfg.use_cache and stage.backbone_frozen


#: When the monitor is the validation loss, a later stage must also keep the task's headline
#: metric (the first of these its rows have) at least where the kept stage had it.
GUARD_METRICS = ("val_accuracy", "val_r2")


class _PlanBest:
    """The plan's best weights across stages: a later stage that is not better is undone.

    Within a stage the runner restores that stage's best epoch; across stages this keeps the
    weights of the best stage so far on the monitored metric, so a plan never ends worse than
    its own best stage (a fine-tuning stage that overfits leaves the head stage's weights).
    With the validation loss as the monitor, a later stage that lowers the loss but also lowers
    the headline metric (:data:`GUARD_METRICS`: accuracy, R²) at its best epoch is undone too:
    a head fitted to convergence is confident, and fine-tuning that softens it lowers the loss
    while losing accuracy (measured on 50 Fashion-MNIST images per class: two-stage kept such a
    stage in 2 of 3 seeds, test accuracy 0.644 and 0.679 against 0.739 and 0.742 for the head).
    """

    def __init__(
        self,
        model: GraftModel,
        cfg: TrainConfig,
        history: list[dict[str, Any]],
        saved: dict[str, Any] | None = None,
    ) -> None:
        self.model, self.cfg = model, cfg
        self.monitor, self.sign = monitor_of(cfg.monitor)
        self.value, self.stage_name = math.inf, ""
        self.guard: float | None = None
        self.state: dict[str, Any] | None = None
        if saved:  # a resumed run: the best of the stages finished before the kill
            self.value, self.stage_name, self.state = (
                saved["value"],
                saved["stage_name"],
                saved["state"],
            )
            self.guard = saved.get("guard")
        elif any(self.monitor in r for r in history):  # a checkpoint without it (older graft)
            done = [r for r in history if self.monitor in r]
            best = min(done, key=lambda r: self.sign * r[self.monitor])
            self.value, self.guard = self.sign * best[self.monitor], self._guard_of(best)
            self.stage_name = str(done[-1]["stage"])
            self.state = _cpu_copy(model.state_dict())

    def _guard_of(self, row: dict[str, Any]) -> float | None:
        if self.monitor != "val_loss":
            return None
        return next((float(row[k]) for k in GUARD_METRICS if k in row), None)

    def snapshot(self) -> dict[str, Any]:
        """What a checkpoint keeps of it, so a resumed run restores the same best stage."""
        if self.state is None:
            return {}
        return {
            "value": self.value, "stage_name": self.stage_name, "state": self.state,
            "guard": self.guard,
        }  # fmt: skip

    def end_stage(
        self, stage: Stage, rows: list[dict[str, Any]], log: Callable[[str], None], is_main: bool
    ) -> None:
        """Keep this stage's weights if it beat the best earlier stage, else restore those."""
        scored = [r for r in rows if self.monitor in r]
        if not scored:  # a pretext stage: nothing to compare
            return
        best = min(scored, key=lambda r: self.sign * r[self.monitor])
        value, guard = self.sign * best[self.monitor], self._guard_of(best)
        lost = guard is not None and self.guard is not None and guard < self.guard - 1e-9
        if self.state is None or (value < self.value - 1e-9 and not lost):
            self.value, self.guard, self.stage_name = value, guard, stage.name
            self.state = _cpu_copy(self.model.state_dict())
            return
        self.model.load_state_dict(self.state)
        for r in scored:
            r["kept"] = False
        if value < self.value - 1e-9:  # lower loss, lower headline metric
            key = next(k for k in GUARD_METRICS if k in best)[4:]
            why = f"lowered the loss but not {key} ({guard:.4f} vs {self.guard:.4f})"
        else:
            name = self.monitor[4:]
            why = f"did not beat stage {self.stage_name} on {name} ({value * self.sign:.4f} vs {self.sign * self.value:.4f})"
        log(f"  stage {stage.name} {why}: keeping the weights of stage {self.stage_name}")
        if self.cfg.checkpoint_dir and is_main:
            last = Path(self.cfg.checkpoint_dir) / "last"
            saved = load_checkpoint(last)
            save_checkpoint(last, {**saved, "model": self.model.state_dict()})


def _cpu_copy(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _pretext_extension(
    extensions: Sequence[Any], model: GraftModel, stage: Stage, accelerator: Any
) -> list[Any]:
    """The one extension that runs a ``pretext`` stage (its data and its loss)."""
    owners = [e for e in extensions if hasattr(e, "pretext_loader")]  # and pretext_inputs
    active = setup_stage(owners, model, stage, accelerator)
    if len(active) != 1:
        raise ConfigError(
            f"stage {stage.name!r} is a pretext stage: exactly one extension must provide its "
            f"data and loss, found {len(active)}; add the extension that prepended it "
            "(e.g. adapt='rotation' with unlabeled=...)"
        )
    return active


def _setup_class_weights(model: GraftModel, data: Dataset, cfg: TrainConfig) -> None:
    if cfg.sampler == "weighted" and data.task != "classification":
        raise ConfigError("--sampler weighted applies to classification only")
    if cfg.class_weights != "balanced":
        return
    if data.task != "classification":
        raise ConfigError("--class-weights balanced applies to classification only")
    from sklearn.utils.class_weight import compute_class_weight

    n = model.task_spec.num_outputs
    present = np.unique(data.train.targets)
    w = np.ones(n, dtype=np.float32)
    w[present] = compute_class_weight("balanced", classes=present, y=data.train.targets)
    model.task.class_weights = torch.as_tensor(w)


def _load_resume(
    model: GraftModel, cfg: TrainConfig, log: Callable[[str], None], fingerprint: dict[str, Any]
) -> dict[str, Any]:
    if not cfg.resume:
        return {}
    assert cfg.checkpoint_dir is not None
    state = load_checkpoint(Path(cfg.checkpoint_dir) / "last")
    check_fingerprint(cfg.checkpoint_dir, state.get("fingerprint"), fingerprint)
    model.load_state_dict(state["model"])
    log(
        f"resumed from {cfg.checkpoint_dir}: stage {state['stage'] + 1}, epoch {state['epoch']} done"
    )
    return state


__all__ = ["Callback", "StepHook", "epoch_seed", "make_accelerator", "train"]
