"""One stage of the training loop: its epochs, validation, early stopping and checkpoints.

:class:`StageRunner` builds the stage's optimizer (the plan's parameter groups and the
extensions' own) and schedule, runs each epoch seeded from (seed, stage, epoch), validates,
keeps the best weights (restored at the end of the stage), stops early, and checkpoints after
every epoch. Step hooks see every step's loss and may end the run (the learning-rate range
test stops there when the loss diverges).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from graft.config import TrainConfig
from graft.errors import ConfigError, TrainingError
from graft.model import GraftModel
from graft.progress import Heartbeat
from graft.strategies.base import Stage
from graft.tasks.linear_start import fit_linear_head
from graft.training.checkpoint import save_checkpoint
from graft.training.extensions import extension_groups, extension_loss, extension_states
from graft.training.params import freeze_batchnorm, param_groups
from graft.training.schedules import build_scheduler

Callback = Callable[[dict[str, Any]], None]
#: ``hook(step, loss)`` after every step's loss (steps counted over the run, from 0); True
#: ends the run before that step's update.
StepHook = Callable[[int, float], bool]


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    return (seed * 1_000_003 + stage * 10_007 + epoch) % (2**31 - 1)


class StageRunner:
    """Epochs of one stage: train, validate, early stopping, checkpoints, best weights restored."""

    def __init__(
        self,
        model: GraftModel,
        stage: Stage,
        index: int,
        accelerator: Any,
        cfg: TrainConfig,
        on_features: bool,
        terms: Sequence[Any] = (),
        generator: torch.Generator | None = None,
        step_hooks: Sequence[StepHook] = (),
        first_step: int = 0,
        linear_start: bool = False,
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
        self.fingerprint: dict[str, Any] = {}  # the run a checkpoint belongs to
        #: the plan's best weights across earlier stages, saved with each checkpoint
        self.plan_best: Callable[[], dict[str, Any]] = dict
        self.generator = generator or torch.Generator()
        self.monitor, self.sign = monitor_of(cfg.monitor)
        self.step_hooks = list(step_hooks)
        self.log: Callable[[str], None] = print  # set by run()
        self.step = first_step  # steps of the run so far (what step hooks count)
        self.stopped = False  # a step hook ended the run
        #: fit the head to convergence before the first epoch (a fresh stage on stored features)
        self.linear_start = linear_start

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
        if self.linear_start and not state and val_loader is not None:
            started = self._linear_start(module, train_loader, val_loader)
            if started is not None:
                self._check_monitor(started)
                rows.append(started)
                log(_epoch_line(started))
                best = self.sign * started[self.monitor]
                best_state = copy.deepcopy(self.acc.unwrap_model(module).state_dict())
                for hook in hooks:
                    hook(started)
        for epoch in range(state.get("epoch", 0) + 1, self.stage.epochs + 1):
            seed = epoch_seed(self.cfg.seed, self.index, epoch)
            set_seed(seed)  # python, numpy, torch: augmentation and dropout
            self.generator.manual_seed(seed)  # the sampling order
            start = time.perf_counter()
            train_loss, term_metrics = self._train_epoch(
                module, optimizer, scheduler, train_loader, epoch
            )
            if self.stopped:
                break
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
            if not self.pretext:
                self._check_monitor(row)
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

    def _check_monitor(self, row: dict[str, Any]) -> None:
        if self.monitor not in row:
            measured = sorted(k for k in row if k.startswith("val_"))
            raise ConfigError(
                f"--monitor {self.monitor!r} is not measured; choose one of {measured}"
            )

    def _linear_start(
        self, module: Any, train_loader: Any, val_loader: Any
    ) -> dict[str, Any] | None:
        """Fit the head to convergence on the stored training features (epoch 0 of the stage).

        See :mod:`graft.tasks.linear_start`; None when the head is not linear or the features
        are too many to hold in memory (then the epochs alone train it).
        """
        rows = train_loader.dataset
        features = getattr(rows, "features", None)
        if not isinstance(features, torch.Tensor):
            return None
        start = time.perf_counter()
        fitted = fit_linear_head(
            self.model.head, self.model.task.loss, features.float(), rows.targets
        )
        if fitted is None:
            return None
        row: dict[str, Any] = {
            "stage": self.stage.name,
            "stage_index": self.index,
            "epoch": 0,
            "kind": "linear_start",
            "train_loss": fitted.loss,
            **self._validate(module, val_loader),
            "lr": 0.0,
            "seconds": round(time.perf_counter() - start, 3),
        }
        return row

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
            "fingerprint": self.fingerprint,
            "plan_best": self.plan_best(),
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
                if self.step_hooks and self._hooks_stop(loss):
                    break
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

    def _hooks_stop(self, loss: torch.Tensor) -> bool:
        """Show this step's loss to the step hooks; True when one of them ends the run."""
        value = float(loss.detach())
        self.stopped = any([hook(self.step, value) for hook in self.step_hooks])
        self.step += 1
        return self.stopped

    def _loss(
        self, module: Any, x: torch.Tensor, y: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The task's loss plus every extra term's, and their metrics."""
        if self.pretext:  # the pretext extension's inputs and loss alone
            (ext,) = self.terms
            x = ext.pretext_inputs(x)  # e.g. four rotations
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


def monitor_of(name: str) -> tuple[str, int]:
    """Full metric key and sign (+1 to minimise, -1 to maximise)."""
    from graft.metrics import metric_direction

    key = name if name.startswith("val_") else f"val_{name}"
    return key, (1 if metric_direction(key[4:]) == "min" else -1)


def _epoch_line(row: dict[str, Any]) -> str:
    keys = [k for k in row if k.startswith("val_") and k != "val_loss"][:3]
    extra = "  ".join(f"{k[4:]} {row[k]:.4f}" for k in keys)
    val = f"val_loss {row['val_loss']:.4f}  " if "val_loss" in row else ""
    if row.get("kind") == "linear_start":
        return f"  linear start  train_loss {row['train_loss']:.4f}  {val}{extra}  ({row['seconds']:.1f}s)"
    return (
        f"  epoch {row['epoch']:>3}  train_loss {row['train_loss']:.4f}  "
        f"{val}{extra}  ({row['seconds']:.1f}s)"
    )


def _bar(it: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=f"  {desc}", leave=False, disable=None)  # off when not a TTY
