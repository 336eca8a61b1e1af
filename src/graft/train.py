"""The one training loop: runs a plan stage by stage over Hugging Face Accelerate.

For each stage the loop sets ``requires_grad`` from the stage's multipliers, builds a fresh
optimizer from its parameter groups, and after every ``model.train()`` puts frozen BatchNorm
layers back in inference mode. A stage whose backbone is entirely frozen trains the head on
stored features (:class:`~graft.features.FeatureStore`): the backbone runs once per file, ever.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.data.base import Dataset, Samples
from graft.errors import TrainingError
from graft.model import GraftModel
from graft.params import apply_trainable, freeze_batchnorm, param_groups
from graft.strategies.base import Plan, Stage


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Options of the loop (not of the strategy).

    Args:
        batch_size: samples per step.
        weight_decay: AdamW weight decay (not applied to biases and norm weights).
        seed: seeds Python, NumPy and torch for a reproducible run.
        num_workers: DataLoader worker processes for image decoding.
        augment: light training augmentation in stages that run the backbone.
        cpu: force the CPU even when an accelerator is present.
        mixed_precision: ``no``, ``fp16`` or ``bf16`` (where the device supports it).
        use_cache: train frozen-backbone stages on stored features.
        cache_dir: feature store folder (default ``$GRAFT_CACHE_DIR`` or ``~/.cache/graft``).
        progress: progress bars.
    """

    batch_size: int = 32
    weight_decay: float = 1e-4
    seed: int = 0
    num_workers: int = 0
    augment: bool = True
    cpu: bool = False
    mixed_precision: str = "no"
    use_cache: bool = True
    cache_dir: str | None = None
    progress: bool = True


class FileLoader:
    """Decode and preprocess one image file (picklable, so DataLoader workers can use it)."""

    def __init__(self, model: GraftModel) -> None:
        from graft.data import build_transform

        self.transform = build_transform(model.data_config, train=False)
        self.channels = model.data_config.channels

    def __call__(self, path: Path) -> torch.Tensor:
        from graft.data import load_image

        return self.transform(load_image(path, self.channels))  # type: ignore[no-any-return]


class _FeatureBatches(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Batches of stored features read from memory-mapped shards, indexed by a list of rows."""

    def __init__(self, features: Any, targets: np.ndarray) -> None:
        self.features = features
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, rows: Any) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(rows, dtype=np.int64)
        x = torch.as_tensor(np.ascontiguousarray(self.features[idx]), dtype=torch.float32)
        return x, torch.as_tensor(self.targets[idx])


def make_accelerator(cfg: TrainConfig) -> Any:
    from accelerate import Accelerator

    return Accelerator(cpu=cfg.cpu, mixed_precision=cfg.mixed_precision)


def train(
    model: GraftModel,
    plan: Plan,
    data: Dataset,
    cfg: TrainConfig,
    *,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run every stage of ``plan`` on ``data``; return the per-epoch history."""
    from accelerate.utils import set_seed

    set_seed(cfg.seed)
    accelerator = make_accelerator(cfg)
    history: list[dict[str, Any]] = []
    model.to(accelerator.device)
    for index, stage in enumerate(plan.stages):
        if stage.epochs == 0:
            continue
        trainable = apply_trainable(model, stage)
        on_features = cfg.use_cache and stage.backbone_frozen
        where = "stored features" if on_features else "images"
        log(
            f"stage {index + 1}/{len(plan.stages)} {stage.name}: {trainable:,} trainable parameters, on {where}"
        )
        loaders = (
            _feature_loaders(model, data, cfg, accelerator)
            if on_features
            else _image_loaders(model, data, cfg)
        )
        runner = _StageRunner(model, stage, accelerator, cfg, on_features, index)
        history += runner.run(*loaders, log=log)
        accelerator.free_memory()
    model.eval()
    return history


def _feature_loaders(
    model: GraftModel, data: Dataset, cfg: TrainConfig, accelerator: Any
) -> tuple[Any, Any]:
    from graft.data.transforms import transform_identity
    from graft.features import FeatureStore

    store = FeatureStore(cfg.cache_dir)
    loader_fn = FileLoader(model)
    tid = transform_identity(model.data_config)
    out = []
    for split, samples, shuffle in (("train", data.train, True), ("val", data.val, False)):
        with accelerator.main_process_first():
            feats = store.extract(
                model.backbone,
                samples.paths,
                load=loader_fn,
                transform_id=tid,
                batch_size=max(cfg.batch_size, 64),
                num_workers=cfg.num_workers,
                progress=cfg.progress,
            )
        targets = model.task.encode(samples.targets).numpy()
        base = torch.utils.data.RandomSampler(targets) if shuffle else range(len(targets))
        sampler = torch.utils.data.BatchSampler(base, cfg.batch_size, drop_last=False)
        ds = _FeatureBatches(feats, targets)
        out.append(torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None))
        del split
    return out[0], out[1]


def _image_loaders(model: GraftModel, data: Dataset, cfg: TrainConfig) -> tuple[Any, Any]:
    from graft.data import ImageDataset, build_transform

    def encoded(samples: Samples) -> Samples:
        return Samples(samples.paths, model.task.encode(samples.targets).numpy())

    train_tf = build_transform(model.data_config, train=cfg.augment)
    eval_tf = build_transform(model.data_config, train=False)
    gen = torch.Generator().manual_seed(cfg.seed)
    train = torch.utils.data.DataLoader(
        ImageDataset(encoded(data.train), train_tf),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=cfg.num_workers,
        generator=gen,
        drop_last=len(data.train) > cfg.batch_size,  # BatchNorm dislikes a final batch of one
    )
    val = torch.utils.data.DataLoader(
        ImageDataset(encoded(data.val), eval_tf),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
    )
    return train, val


class _StageRunner:
    """Epochs of one stage: train, validate, early stopping, best weights restored."""

    def __init__(
        self,
        model: GraftModel,
        stage: Stage,
        accelerator: Any,
        cfg: TrainConfig,
        on_features: bool,
        index: int,
    ) -> None:
        self.model, self.stage, self.acc, self.cfg = model, stage, accelerator, cfg
        self.on_features, self.index = on_features, index
        self.module: torch.nn.Module = model.head if on_features else model

    def run(
        self, train_loader: Any, val_loader: Any, *, log: Callable[[str], None]
    ) -> list[dict[str, Any]]:
        optimizer = torch.optim.AdamW(
            param_groups(self.model, self.stage, weight_decay=self.cfg.weight_decay)
        )
        total = max(1, self.stage.epochs * len(train_loader))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total))
        )
        module, optimizer, train_loader, val_loader, scheduler = self.acc.prepare(
            self.module, optimizer, train_loader, val_loader, scheduler
        )
        rows: list[dict[str, Any]] = []
        best, best_state, bad = math.inf, None, 0
        for epoch in range(1, self.stage.epochs + 1):
            start = time.perf_counter()
            train_loss = self._train_epoch(module, optimizer, scheduler, train_loader, epoch)
            row = {
                "stage": self.stage.name,
                "stage_index": self.index,
                "epoch": epoch,
                "train_loss": train_loss,
                **self._validate(module, val_loader),
                "lr": optimizer.param_groups[-1]["lr"],
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            log(_epoch_line(row))
            if row["val_loss"] < best - 1e-6:
                best, bad = row["val_loss"], 0
                best_state = copy.deepcopy(self.acc.unwrap_model(module).state_dict())
            else:
                bad += 1
                if self.stage.patience is not None and bad >= self.stage.patience:
                    log(f"  early stop: val_loss did not improve for {bad} epochs")
                    break
        if best_state is not None:
            self.acc.unwrap_model(module).load_state_dict(best_state)
            for r in rows:
                r["best"] = r["val_loss"] == best
        return rows

    def _set_train(self, module: torch.nn.Module) -> None:
        module.train()
        freeze_batchnorm(self.model, self.stage)

    def _train_epoch(
        self, module: Any, optimizer: Any, scheduler: Any, loader: Any, epoch: int
    ) -> float:
        self._set_train(module)
        total, count = 0.0, 0
        for step, (x, y) in enumerate(
            _bar(loader, self.cfg.progress, f"{self.stage.name} epoch {epoch}")
        ):
            loss = self.model.task.loss(module(x), y)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {loss.item()} in stage {self.stage.name!r}, epoch {epoch}, step {step}; "
                    "try a lower --lr, check the targets for extreme values, or use --mixed-precision no"
                )
            self.acc.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item() * len(y)
            count += len(y)
        return total / max(count, 1)

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
        raw_targets = _decode_targets(self.model, targets.numpy())
        metrics = self.model.task.metrics(raw_targets, self.model.task.decode(outputs.numpy()))
        return {"val_loss": val_loss, **{f"val_{k}": v for k, v in metrics.items()}}


def _decode_targets(model: GraftModel, encoded: np.ndarray) -> np.ndarray:
    if model.task_spec.kind == "regression":
        return model.task.decode(encoded)
    return encoded


def _epoch_line(row: dict[str, Any]) -> str:
    keys = [k for k in row if k.startswith("val_") and k != "val_loss"][:3]
    extra = "  ".join(f"{k[4:]} {row[k]:.4f}" for k in keys)
    return (
        f"  epoch {row['epoch']:>3}  train_loss {row['train_loss']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  {extra}  ({row['seconds']:.1f}s)"
    )


def _bar(it: Any, enabled: bool, desc: str) -> Iterator[Any]:
    if not enabled:
        return iter(it)
    from tqdm.auto import tqdm

    return iter(tqdm(it, desc=f"  {desc}", leave=False))
