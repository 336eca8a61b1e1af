"""The front door: ``graft.fit`` (data -> trained model), one function per CLI sub-command.

Every keyword of :func:`fit` is a ``graft fit`` option of the same name in kebab-case.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from graft.backbones.base import Backbone
from graft.data.base import Dataset
from graft.errors import ConfigError
from graft.model import GraftModel
from graft.protect.base import Regularizer
from graft.strategies.base import Plan, Strategy, create_strategy
from graft.tasks import TaskSpec, spec_for
from graft.training.loop import Callback, LossTerm, TrainConfig, train
from graft.training.schedules import ScheduleConfig
from graft.workflows.advise import resolve_auto  # measures on stored features

DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_STRATEGY = "auto"  # the advisor measures the data, then picks (strategies/auto.py)


def load_data(
    data: str | Path | Dataset,
    *,
    task: str | None = None,
    label_column: str | None = None,
    target_columns: list[str] | None = None,
    path_column: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    strict: bool = False,
    label_separator: str | None = None,
) -> Dataset:
    """A :class:`Dataset` from a folder or table path (a Dataset passes through)."""
    if isinstance(data, Dataset):
        return data
    from graft.data import load

    extra: dict[str, Any] = {} if label_separator is None else {"label_separator": label_separator}
    return load(
        data,
        task=task,
        label_column=label_column,
        target_columns=target_columns,
        path_column=path_column,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        strict=strict,
        **extra,
    )


def make_backbone(
    backbone: str | Backbone = DEFAULT_BACKBONE,
    *,
    weights: str | Path | None = None,
    pretrained: bool = True,
    image_size: int | None = None,
) -> Backbone:
    """A backbone by name (bundled, ``timm:<name>``, a saved graft model) or the object itself."""
    if isinstance(backbone, Backbone):
        if image_size is not None:
            backbone.data_config = backbone.data_config.with_image_size(image_size)
        return backbone
    from graft.backbones import create

    return create(backbone, pretrained=pretrained, weights=weights, image_size=image_size)


def task_spec_for(
    data: Dataset, *, dropout: float = 0.0, loss_weights: dict[str, float] | None = None
) -> TaskSpec:
    """The head's task spec from a dataset: see :func:`graft.tasks.spec_for` (its one home)."""
    return spec_for(data, dropout=dropout, loss_weights=loss_weights)


def make_plan(
    model: GraftModel, strategy: str | Strategy, *, epochs: int, lr: float, **options: Any
) -> Plan:
    """The plan a strategy makes for this model's layer groups (the head last)."""
    strat = create_strategy(strategy, **options)
    groups = [*model.backbone.group_names, "head"]
    return strat.plan(groups, epochs=epochs, lr=lr)


def fit(
    data: str | Path | Dataset,
    *,
    task: str | None = None,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    pretrained: bool = True,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    epochs: int = 5,
    lr: float = 1e-3,
    image_size: int | None = None,
    label_column: str | None = None,
    target_columns: list[str] | None = None,
    path_column: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    dropout: float = 0.0,
    strict: bool = False,
    label_separator: str | None = None,
    loss_weights: dict[str, float] | None = None,
    unlabeled: str | Path | None = None,
    adapt: str | None = None,
    adapt_options: dict[str, Any] | None = None,
    target_eval: str | Path | None = None,
    regularize: str | Regularizer | None = None,
    regularize_strength: float | None = None,
    regularize_options: dict[str, Any] | None = None,
    ewc_data: str | Path | None = None,
    retention: bool = True,
    retention_data: str | Path | None = None,
    out: str | Path | None = None,
    report: str | Path | None = None,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    strategy_options: dict[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
    terms: Sequence[LossTerm] = (),
    **train_options: Any,
) -> GraftModel:
    """Transfer a pretrained backbone to ``data`` and return the trained model.

    Args:
        data: an image folder (``root/<class>/*``, optional ``train/val/test``), a CSV/Parquet
            table, or a loaded :class:`~graft.data.Dataset`.
        task: ``classification`` or ``regression`` (inferred when None).
        backbone: ``efficientnet_lite0`` (bundled), ``timm:<name>``, or a Backbone.
        strategy: a registered strategy name or a Strategy object.
        epochs: epochs per stage.
        lr: base learning rate (the head's).
        out: save the trained model there (atomic); checkpoints go to ``<out>.ckpt`` while
            training and are removed once the model is saved.
        report: write an HTML report there (plan, advisor, metrics, curves, plots).
        dry_run: build everything and log the plan, but do not train.
        strategy_options: options of the strategy (e.g. ``{"top": 3, "lr_factor": 0.01}``).
        callbacks: functions called with each epoch's metrics row.
        terms: extra losses (regularizers, domain adaptation) in stages that run the backbone.
        unlabeled: unlabeled target images (a folder, class folders ignored, or a table of
            paths) for domain adaptation; see :mod:`graft.adapt.session`.
        adapt: ``dann`` (the default with ``unlabeled``), ``coral``, ``mmd`` or ``rotation``.
        adapt_options: the method's options (e.g. ``{"weight": 0.5, "hidden": 256}``).
        target_eval: labeled target images used only to report target metrics.
        regularize: keep what the backbone knew: ``ewc``, ``l2sp``, ``lwf`` or a Regularizer,
            active in stages that train the backbone; see :mod:`graft.protect.session`.
        regularize_strength: its main strength (EWC/LwF ``lam``, L2-SP ``alpha``).
        regularize_options: its other options (e.g. ``{"temperature": 2}`` for LwF).
        ewc_data: source-like images for EWC's Fisher (default: the target training images).
        retention: after training, measure agreement with the original model when the
            backbone keeps its original classifier; stored in ``model.info["retention"]``.
        retention_data: reference images for retention (default: the test, else val split).
        **train_options: options of the loop, see :class:`~graft.training.loop.TrainConfig`
            (``batch_size``, ``seed``, ``monitor``, ``schedule``, ``warmup``, ``grad_clip``,
            ``resume``, ...).

    Example:
        >>> model = graft.fit("photos/", epochs=3)  # doctest: +SKIP
        >>> model.predict(["photos/cat/1.jpg"])  # doctest: +SKIP
    """
    started = time.perf_counter()
    main_process = is_main_process()
    if not main_process:
        log = _quiet  # one process speaks and writes in a distributed run
    seed = int(train_options.get("seed", 0))
    dataset = load_data(
        data,
        task=task,
        label_column=label_column,
        target_columns=target_columns,
        path_column=path_column,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        strict=strict,
        label_separator=label_separator,
    )
    if out is not None and train_options.get("checkpoint_dir") is None:
        train_options["checkpoint_dir"] = f"{out}.ckpt"
    cfg = train_config(**train_options)
    torch.manual_seed(seed)  # a randomly initialised backbone and the new head are reproducible
    bb = make_backbone(backbone, weights=weights, pretrained=pretrained, image_size=image_size)
    model = GraftModel(bb, task_spec_for(dataset, dropout=dropout, loss_weights=loss_weights))
    if isinstance(strategy, str) and strategy.replace("-", "_") == "auto":
        strategy = resolve_auto(model, dataset, cfg, options=strategy_options, log=log, seed=seed)
    plan = make_plan(model, strategy, epochs=epochs, lr=lr, **(strategy_options or {}))
    model.info["data_options"] = {
        "label_column": label_column,
        "target_columns": target_columns,
        "path_column": path_column,
        "label_separator": label_separator,
    }
    model.info["split"] = {
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
    }
    log(describe_data(dataset))
    log(plan.table(trainable_counts(model, plan)))
    model.info["plan"] = plan.to_dict()
    from graft.workflows.extensions import (
        finish_extensions,
        setup_extensions,
        train_config_for,
    )

    plan, extensions = setup_extensions(
        model, plan, dataset, cfg, dry_run=dry_run, log=log,
        protect={"regularize": regularize, "regularize_strength": regularize_strength,
                 "regularize_options": regularize_options, "ewc_data": ewc_data,
                 "retention": retention, "retention_data": retention_data},
        adapt={"unlabeled": unlabeled, "adapt": adapt, "adapt_options": adapt_options,
               "target_eval": target_eval},
    )  # fmt: skip
    cfg = train_config_for(
        cfg, extensions, weight_decay_given="weight_decay" in train_options, log=log
    )
    if dry_run:
        return model
    history = train(
        model, plan, dataset, cfg, log=log, callbacks=callbacks, extensions=[*terms, *extensions]
    )
    metrics = {"val": model.evaluate(dataset.val)}
    if dataset.test is not None and len(dataset.test):
        metrics["test"] = model.evaluate(dataset.test)
    model.info.update(
        history=history,
        metrics=metrics,
        data=data_summary(dataset),
        train_config=cfg.to_dict(),
        seconds=round(time.perf_counter() - started, 2),
    )
    model.info["extensions"] = finish_extensions(extensions, model, dataset, cfg)
    if out is not None and main_process:
        model.save(out)
        if cfg.checkpoint_dir == f"{out}.ckpt":
            shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)
    if report is not None and main_process:
        from graft.evaluate.run_report import write_fit_report

        log(f"report: {write_fit_report(model, dataset, report)}")
    return model


def is_main_process() -> bool:
    """False in every process but the first of a distributed run (torchrun, accelerate launch)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _quiet(message: str) -> None:
    del message


def train_config(**options: Any) -> TrainConfig:
    """A TrainConfig from flat keyword options (schedule options included)."""
    sched_keys = {f.name for f in fields(ScheduleConfig)}
    sched = {
        ("name" if k == "schedule" else k): v
        for k, v in options.items()
        if k in sched_keys - {"name"} or k == "schedule"
    }
    rest = {k: v for k, v in options.items() if k not in sched_keys and k != "schedule"}
    valid = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(rest) - valid)
    if unknown:
        known = sorted(valid - {"schedule"} | sched_keys - {"name"} | {"schedule"})
        raise ConfigError(
            f"unknown option {', '.join(unknown)}; training options: {', '.join(known)}"
        )
    return TrainConfig(
        schedule=ScheduleConfig(**{k: v for k, v in sched.items() if v is not None}),
        **{k: v for k, v in rest.items() if v is not None},
    )


def trainable_counts(model: GraftModel, plan: Plan) -> list[int]:
    """Trainable parameters per stage (applies each stage's freezing, then freezes all)."""
    from graft.training.params import apply_trainable

    counts = [apply_trainable(model, s) for s in plan.stages]
    for p in model.parameters():
        p.requires_grad_(True)
    return counts


def data_summary(data: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"source": str(data.source), "task": data.task}
    out.update({f"n_{k}": len(v) for k, v in data.splits().items()})
    if data.class_names is not None:
        out["classes"] = list(data.class_names)
        out["class_counts"] = data.class_counts()
    if data.target_names is not None:
        out["targets"] = list(data.target_names)
    out["skipped"] = [str(p) for p, _ in data.skipped]
    return out


def describe_data(data: Dataset) -> str:
    parts = ", ".join(f"{k} {len(v)}" for k, v in data.splits().items())
    return f"data: {data.source} ({data.task}, {data.describe()}; {parts})"


def lr_find(
    data: str | Path | Dataset,
    *,
    task: str | None = None,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    pretrained: bool = True,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    stage: int = 0,
    lr: float = 1e-3,
    image_size: int | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    plot: str | Path | None = None,
    strategy_options: dict[str, Any] | None = None,
    **train_options: Any,
) -> Any:
    """Learning-rate range test on one stage of a strategy's plan; returns an LRFindResult.

    Args:
        stage: which stage of the plan to test (0 = the first, usually the head).
        plot: write the loss-vs-rate plot there (PNG).
    """
    from graft.training.lr_find import lr_find as run

    seed = int(train_options.get("seed", 0))
    dataset = load_data(data, task=task, seed=seed)
    cfg = train_config(**train_options)
    torch.manual_seed(seed)
    bb = make_backbone(backbone, weights=weights, pretrained=pretrained, image_size=image_size)
    model = GraftModel(bb, task_spec_for(dataset))
    plan = make_plan(model, strategy, epochs=1, lr=lr, **(strategy_options or {}))
    if not 0 <= stage < len(plan.stages):
        raise ConfigError(f"--stage {stage}: the plan has stages 0..{len(plan.stages) - 1}")
    result = run(
        model, plan, dataset, cfg, stage_index=stage, start_lr=start_lr, end_lr=end_lr, steps=steps
    )
    if plot is not None:
        result.plot(plot)
    return result
