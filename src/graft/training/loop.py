"""The one training loop: runs a plan stage by stage over Hugging Face Accelerate.

For each stage the loop sets ``requires_grad`` from the stage's multipliers, builds a fresh
optimizer (and schedule) from its parameter groups, and after every ``model.train()`` puts
frozen BatchNorm layers back in inference mode. A stage whose backbone is entirely frozen
trains the head on stored features (:class:`~graft.measure.features.FeatureStore`): the backbone runs
once per file, ever. Each epoch is seeded from (seed, stage, epoch), so a run resumed from its
last checkpoint ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from graft.config import TrainConfig
from graft.data.base import Dataset
from graft.errors import ConfigError, TrainingError
from graft.model import GraftModel
from graft.strategies.base import Plan, Stage
from graft.training.extensions import (
    Extension,
    extension_groups,
    extension_loss,
    extension_states,
    restore_states,
    setup_stage,
)
from graft.training.heartbeat import Heartbeat
from graft.training.loaders import constant_features_note, feature_loaders, image_loaders
from graft.training.params import apply_trainable, freeze_batchnorm, param_groups
from graft.training.schedules import build_scheduler

Callback = Callable[[dict[str, Any]], None]


class LossTerm(Protocol):
    """An extra loss added in stages that run the backbone (regularizers, domain adaptation).

    ``setup`` runs at the start of each such stage; ``__call__`` runs every step with the
    batch's inputs, backbone features and head outputs, and the stage's progress (0 -> 1), and
    returns the term's loss (already weighted) and its metrics (averaged per epoch and logged as
    ``train_<name>``). A term owns whatever else it needs (a teacher, unlabeled target batches).
    A term with trainable parameters of its own also defines ``parameter_groups(stage)``: the
    stage's fresh optimizer then trains them too (see :func:`term_groups`).
    """

    name: str

    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> None: ...

    def __call__(
        self,
        model: GraftModel,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


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


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    return (seed * 1_000_003 + stage * 10_007 + epoch) % (2**31 - 1)


def train(
    model: GraftModel,
    plan: Plan,
    data: Dataset,
    cfg: TrainConfig,
    *,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Callback] = (),
    extensions: Sequence[Extension | LossTerm] = (),
) -> list[dict[str, Any]]:
    """Run every stage of ``plan`` on ``data``; return the per-epoch history.

    ``extensions`` (:mod:`graft.training.extensions`: regularizers, domain adaptation, target
    reports) add their loss in the stages that run the backbone where their ``setup`` does not
    answer False; stages on stored features train the head alone. Every extension's
    ``on_epoch`` sees each epoch's row before the checkpoint (which keeps what it adds, e.g.
    ``target_*`` metrics), then ``callbacks`` see it, then the log writes it.
    """
    from graft.training.logs import EpochLogger

    accelerator = make_accelerator(cfg)
    if accelerator.num_processes > 1:
        log(f"distributed: {accelerator.num_processes} processes ({accelerator.distributed_type})")
    model.to(accelerator.device)
    _setup_class_weights(model, data, cfg)
    resume = _load_resume(model, cfg, log)
    history: list[dict[str, Any]] = list(resume.get("history", []))
    logger = EpochLogger(cfg.log_csv, cfg.tensorboard, accelerator.is_main_process)
    keeper = _PlanBest(model, cfg, history)
    for index, stage in enumerate(plan.stages):
        if stage.epochs == 0 or index < resume.get("stage", 0):
            continue
        state = resume if index == resume.get("stage") else {}
        trainable = apply_trainable(model, stage)
        pretext = stage.kind == "pretext"
        on_features = not pretext and cfg.use_cache and stage.backbone_frozen
        where = "stored features" if on_features else "images"
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
        runner = _StageRunner(model, stage, index, accelerator, cfg, on_features, active, generator)
        runner.saved = list(extensions)
        rows = runner.run(
            # Extensions and callbacks may add columns to a row: the log writes it last.
            *loaders,
            state=state,
            history=history,
            log=log,
            hooks=[*callbacks, logger.log],
        )
        history += rows
        keeper.end_stage(stage, rows, log, is_main=accelerator.is_main_process)
        accelerator.free_memory()
    logger.close()
    model.eval()
    return history


class _PlanBest:
    """The plan's best weights across stages: a later stage that is not better is undone.

    Within a stage the runner restores that stage's best epoch; across stages this keeps the
    weights of the best stage so far on the monitored metric, so a plan never ends worse than
    its own best stage (a fine-tuning stage that overfits leaves the head stage's weights).
    """

    def __init__(self, model: GraftModel, cfg: TrainConfig, history: list[dict[str, Any]]) -> None:
        self.model, self.cfg = model, cfg
        self.monitor, self.sign = _monitor(cfg.monitor)
        done = [r for r in history if self.monitor in r]  # stages finished before a resume
        self.value = min((self.sign * r[self.monitor] for r in done), default=math.inf)
        self.stage_name = str(done[-1]["stage"]) if done else ""
        self.state: dict[str, Any] | None = _cpu_copy(model.state_dict()) if done else None

    def end_stage(
        self, stage: Stage, rows: list[dict[str, Any]], log: Callable[[str], None], is_main: bool
    ) -> None:
        """Keep this stage's weights if it beat the best earlier stage, else restore those."""
        scored = [r for r in rows if self.monitor in r]
        if not scored:  # a pretext stage: nothing to compare
            return
        value = min(self.sign * r[self.monitor] for r in scored)
        if value < self.value - 1e-9 or self.state is None:
            self.value, self.stage_name = value, stage.name
            self.state = _cpu_copy(self.model.state_dict())
            return
        self.model.load_state_dict(self.state)
        for r in scored:
            r["kept"] = False
        name = self.monitor[4:]
        log(
            f"  stage {stage.name} did not beat stage {self.stage_name} on {name} "
            f"({self.sign * value:.4f} vs {self.sign * self.value:.4f}): "
            f"keeping the weights of stage {self.stage_name}"
        )
        if self.cfg.checkpoint_dir and is_main:
            from graft.training.checkpoint import load_checkpoint, save_checkpoint

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


def _load_resume(model: GraftModel, cfg: TrainConfig, log: Callable[[str], None]) -> dict[str, Any]:
    if not cfg.resume:
        return {}
    from graft.training.checkpoint import load_checkpoint

    assert cfg.checkpoint_dir is not None
    state = load_checkpoint(Path(cfg.checkpoint_dir) / "last")
    model.load_state_dict(state["model"])
    log(
        f"resumed from {cfg.checkpoint_dir}: stage {state['stage'] + 1}, epoch {state['epoch']} done"
    )
    return state


class _StageRunner:
    """Epochs of one stage: train, validate, early stopping, checkpoints, best weights restored."""

    def __init__(
        self,
        model: GraftModel,
        stage: Stage,
        index: int,
        accelerator: Any,
        cfg: TrainConfig,
        on_features: bool,
        terms: Sequence[LossTerm] = (),
        generator: torch.Generator | None = None,
    ) -> None:
        self.model, self.stage, self.index, self.acc, self.cfg = (
            model,
            stage,
            index,
            accelerator,
            cfg,
        )
        self.module: torch.nn.Module = model.head if on_features else model
        self.terms = list(terms)
        self.pretext = stage.kind == "pretext"
        self.saved: list[Any] = list(terms)  # whose state the checkpoints keep
        self.generator = generator or torch.Generator()
        self.monitor, self.sign = _monitor(cfg.monitor)
        self.log: Callable[[str], None] = print  # set by run()

    def run(
        self,
        train_loader: Any,
        val_loader: Any,
        *,
        state: dict[str, Any],
        history: list[dict[str, Any]],
        log: Callable[[str], None],
        hooks: Sequence[Callback],
    ) -> list[dict[str, Any]]:
        from accelerate.utils import set_seed

        groups = (
            []
            if self.pretext
            else param_groups(self.model, self.stage, weight_decay=self.cfg.weight_decay)
        )
        optimizer = torch.optim.AdamW(
            groups + extension_groups(self.terms, self.stage, self.cfg.weight_decay)
        )
        steps = self.stage.epochs * math.ceil(len(train_loader) / self.cfg.grad_accum)
        scheduler = build_scheduler(optimizer, steps, self.cfg.schedule)
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        if val_loader is None:  # a pretext stage: nothing labeled to validate on
            module, optimizer, train_loader = self.acc.prepare(self.module, optimizer, train_loader)
        else:
            prepared = self.acc.prepare(self.module, optimizer, train_loader, val_loader)
            module, optimizer, train_loader, val_loader = prepared
        rows: list[dict[str, Any]] = list(state.get("rows", []))
        best = state.get("best", math.inf)
        best_state = state.get("best_state")
        bad = state.get("bad", 0)
        self.log = log
        for epoch in range(state.get("epoch", 0) + 1, self.stage.epochs + 1):
            seed = epoch_seed(self.cfg.seed, self.index, epoch)
            set_seed(seed)  # python, numpy, torch: augmentation and dropout
            self.generator.manual_seed(seed)  # the sampling order
            start = time.perf_counter()
            train_loss, term_metrics = self._train_epoch(
                module, optimizer, scheduler, train_loader, epoch
            )
            row: dict[str, Any] = {
                "stage": self.stage.name,
                "stage_index": self.index,
                "epoch": epoch,
                "train_loss": train_loss,
                **term_metrics,
            }
            if self.pretext:
                row["kind"] = "pretext"
            else:
                row.update(self._validate(module, val_loader))
            row.update(
                lr=optimizer.param_groups[-1]["lr"], seconds=round(time.perf_counter() - start, 3)
            )
            if not self.pretext and self.monitor not in row:
                raise ConfigError(
                    f"--monitor {self.monitor!r} is not measured; choose one of {sorted(k for k in row if k.startswith('val_'))}"
                )
            rows.append(row)
            log(_epoch_line(row))
            value = row["train_loss"] if self.pretext else self.sign * row[self.monitor]
            if self.cfg.schedule.per_epoch:
                scheduler.step(value)
            if self.pretext:
                pass  # no validation: the last epoch's weights are kept
            elif value < best - 1e-9:
                best, bad = value, 0
                best_state = copy.deepcopy(self.acc.unwrap_model(module).state_dict())
            else:
                bad += 1
            stop = self.stage.patience is not None and bad >= self.stage.patience
            for ext in self.saved:  # part of the epoch: the checkpoint keeps what they record
                if hasattr(ext, "on_epoch"):
                    ext.on_epoch(row)
            self._checkpoint(
                optimizer, scheduler, epoch, rows, history, best, best_state, bad, stop
            )
            for hook in hooks:
                hook(row)
            if stop:
                log(f"  early stop: {self.monitor} did not improve for {bad} epochs")
                break
        if best_state is not None:
            self.acc.unwrap_model(module).load_state_dict(best_state)
            best_row = min(rows, key=lambda r: self.sign * r[self.monitor])
            for r in rows:
                r["best"] = r is best_row
        return rows

    def _checkpoint(
        self,
        optimizer: Any,
        scheduler: Any,
        epoch: int,
        rows: list[dict[str, Any]],
        history: list[dict[str, Any]],
        best: float,
        best_state: Any,
        bad: int,
        stop: bool,
    ) -> None:
        if not self.cfg.checkpoint_dir or not self.acc.is_main_process:
            return
        from graft.training.checkpoint import save_checkpoint

        done = stop or epoch == self.stage.epochs
        model_state = self.model.state_dict()
        if done and best_state is not None:
            # The stage ends here: the next stage starts from the restored best weights.
            model_state = {**model_state, **_prefixed(self.module, self.model, best_state)}
        state = {
            "stage": self.index + 1 if done else self.index,
            "epoch": 0 if done else epoch,
            "model": model_state,
            "history": history + (rows if done else []),
            "extensions": extension_states(self.saved),
        }
        if not done:
            state.update(
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                rows=rows,
                best=best,
                bad=bad,
                best_state=best_state,
            )
        save_checkpoint(Path(self.cfg.checkpoint_dir) / "last", state)

    def _train_epoch(
        self, module: Any, optimizer: Any, scheduler: Any, loader: Any, epoch: int
    ) -> tuple[float, dict[str, float]]:
        module.train()
        freeze_batchnorm(self.model, self.stage)
        total, count = 0.0, 0
        sums: dict[str, float] = {}
        steps = max(1, self.stage.epochs * len(loader))
        what = f"{self.stage.name} epoch {epoch}/{self.stage.epochs}"
        beat = Heartbeat(what, len(loader), self.log)
        for step, (x, y) in enumerate(
            _bar(loader, self.cfg.progress, f"{self.stage.name} epoch {epoch}")
        ):
            if step:
                beat.tick(step)
            with self.acc.accumulate(module):
                progress = ((epoch - 1) * len(loader) + step) / steps
                loss, metrics = self._loss(module, x, y, progress)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"loss became {loss.item()} in stage {self.stage.name!r}, epoch {epoch}, step {step}; "
                        "try a lower --lr, --grad-clip 1.0, check the targets for extreme values, "
                        "or train in full precision (--mixed-precision no)"
                    )
                self.acc.backward(loss)
                if self.cfg.grad_clip is not None and self.acc.sync_gradients:
                    self.acc.clip_grad_norm_(module.parameters(), self.cfg.grad_clip)
                optimizer.step()
                if not self.cfg.schedule.per_epoch and self.acc.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            total += loss.item() * len(y)
            count += len(y)
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v * len(y)
        # Every process saw its share of each batch: sum over processes for the epoch's means.
        keys = sorted(sums)
        local = torch.tensor([total, count, *(sums[k] for k in keys)], dtype=torch.float64)
        summed = self.acc.reduce(local.to(self.acc.device), reduction="sum").cpu().tolist()
        n = max(summed[1], 1.0)
        return summed[0] / n, {f"train_{k}": v / n for k, v in zip(keys, summed[2:], strict=True)}

    def _loss(
        self, module: Any, x: torch.Tensor, y: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The task's loss plus every extra term's, and their metrics."""
        if self.pretext:  # the pretext extension's inputs and loss alone
            (ext,) = self.terms
            x = ext.pretext_inputs(x)  # type: ignore[attr-defined]  # e.g. four rotations
            outputs, features = module(x, return_features=True)  # DDP and autocast apply
            loss, found = extension_loss(ext, self.model, x, features, outputs, progress)
            return loss, {f"{ext.name}_{k}": v for k, v in found.items()}
        if not self.terms:
            return self.model.task.loss(module(x), y), {}
        outputs, features = module(x, return_features=True)
        task_loss = self.model.task.loss(outputs, y)
        loss, metrics = task_loss, {"task_loss": task_loss.item()}
        for term in self.terms:
            extra, term_metrics = extension_loss(term, self.model, x, features, outputs, progress)
            loss = loss + extra
            metrics[f"{term.name}_loss"] = extra.item()
            metrics.update({f"{term.name}_{k}": v for k, v in term_metrics.items()})
        return loss, metrics

    @torch.no_grad()
    def _validate(self, module: Any, loader: Any) -> dict[str, float]:
        module.eval()
        outs, ys = [], []
        for x, y in loader:
            out, y = self.acc.gather_for_metrics((module(x), y))
            outs.append(out.float().cpu())
            ys.append(y.cpu())
        outputs, targets = torch.cat(outs), torch.cat(ys)
        val_loss = float(self.model.task.loss(outputs, targets))
        raw_targets = self.model.task.decode_targets(targets.numpy())
        metrics = self.model.task.metrics(raw_targets, self.model.task.decode(outputs.numpy()))
        return {"val_loss": val_loss, **{f"val_{k}": v for k, v in metrics.items()}}


def _prefixed(module: torch.nn.Module, model: GraftModel, state: dict[str, Any]) -> dict[str, Any]:
    if module is model:
        return state
    return {f"head.{k}": v for k, v in state.items()}


def _monitor(name: str) -> tuple[str, int]:
    """Full metric key and sign (+1 to minimise, -1 to maximise)."""
    from graft.metrics import metric_direction

    key = name if name.startswith("val_") else f"val_{name}"
    return key, (1 if metric_direction(key[4:]) == "min" else -1)


def _epoch_line(row: dict[str, Any]) -> str:
    keys = [k for k in row if k.startswith("val_") and k != "val_loss"][:3]
    extra = "  ".join(f"{k[4:]} {row[k]:.4f}" for k in keys)
    val = f"val_loss {row['val_loss']:.4f}  " if "val_loss" in row else ""
    return (
        f"  epoch {row['epoch']:>3}  train_loss {row['train_loss']:.4f}  "
        f"{val}{extra}  ({row['seconds']:.1f}s)"
    )


def _bar(it: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=f"  {desc}", leave=False, disable=None)  # off when not a TTY
