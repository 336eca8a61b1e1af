"""The front door: ``graft.fit`` (data -> trained model), read top to bottom.

``fit`` takes one :class:`~graft.config.FitConfig` (or flat overrides of its fields, e.g.
``epochs=3, regularize="ewc"``): config -> data -> backbone -> model -> plan (auto: the advisor
measures) -> extensions -> train -> evaluate -> record -> save -> report.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from graft import __version__
from graft.backbones import check_input_kind
from graft.backbones import create as create_backbone
from graft.backbones.base import Backbone
from graft.config import (
    DEFAULT_BACKBONE,
    SCRATCH_NETWORKS,
    FitConfig,
    OutputConfig,
    StrategyConfig,
    TrainConfig,
)
from graft.data import load as load_dataset
from graft.data.base import Dataset
from graft.data.images import small_network_side
from graft.errors import ConfigError, DataError
from graft.model import GraftModel, check_out
from graft.strategies.auto import FROM_SCRATCH, Facts
from graft.strategies.base import Plan, Strategy, create_strategy
from graft.tasks import TaskSpec, spec_for
from graft.training.checkpoint import is_checkpoint
from graft.training.extensions import Extension
from graft.training.loaders import drop_unreadable, evaluate_readable, readable, stored_features
from graft.training.loop import Callback, on_stored_features, train
from graft.training.params import trainable_counts
from graft.training.schedules import check_schedule
from graft.workflows.advise import resolve_auto, resolve_size  # measures on stored features
from graft.workflows.auto_backbone import AutoBackbone, rank_auto
from graft.workflows.extensions import finish_extensions, setup_extensions, train_config_for

Log = Callable[[str], None]
# Keywords that may carry a built object instead of a name; the config records the name.
OBJECT_KEYS = ("backbone", "strategy", "regularize")


def fit(
    data: str | Path | Dataset,
    config: FitConfig | None = None,
    *,
    log: Log = print,
    callbacks: Sequence[Callback] = (),
    extensions: Sequence[Extension] = (),
    **overrides: Any,
) -> GraftModel:
    """Transfer a pretrained backbone to ``data`` and return the trained model.

    Args:
        data: an image folder (``root/<class>/*``, optional ``train/val/test``), a CSV/Parquet
            table, or a loaded :class:`~graft.data.Dataset`.
        config: the run configuration (default: :class:`~graft.config.FitConfig` defaults).
        log: where progress lines go.
        callbacks: functions called with each epoch's metrics row.
        extensions: extra :class:`~graft.training.extensions.Extension` objects (losses,
            per-epoch hooks, record entries) beside the ones the configuration asks for.
        **overrides: any field of the configuration by its flat name (``epochs=3``,
            ``strategy="two_stage"``, ``regularize="ewc"``, ``batch_size=16``, ...; see
            ``graft fit --help``); ``backbone``, ``strategy`` and ``regularize`` also take a
            built object; ``strategy_options={"top": 3}`` is the older spelling of ``top=3``.

    Raises:
        ConfigError: an unknown override (the message names the close ones) or a bad value.

    Example:
        >>> model = graft.fit("photos/", epochs=3)  # doctest: +SKIP
        >>> model.predict(["photos/cat/1.jpg"])  # doctest: +SKIP
    """
    started = time.perf_counter()
    log = log if is_main_process() else _quiet  # one process speaks and writes
    cfg, objects = resolve_config(config, overrides)
    train_cfg = training_for(cfg)
    own_checkpoint = check_outputs(cfg, train_cfg)
    dataset = load_data_for(data, cfg)
    require_validation(dataset, cfg)  # before --dry-run returns: both refuse the same data
    torch.manual_seed(cfg.training.seed)  # a random backbone and the new head are reproducible
    backbone, picked = chosen_backbone(dataset, cfg, objects, log=log)
    check_input_kind(backbone, dataset)
    spec = task_spec_for(dataset, dropout=cfg.model.dropout, loss_weights=cfg.data.loss_weights)
    model = GraftModel(backbone, spec)
    plan = plan_for(model, dataset, cfg, objects.get("strategy"), train_cfg, log=log)
    if picked is not None:  # with the size the fit trains at (the size rule's, or yours)
        model.info["backbone_ranking"] = picked.to_dict(model.data_config.image_size)
    record_setup(model, cfg, plan)
    log(describe_data(dataset))
    log(plan.table(trainable_counts(model, plan)))
    plan, built = setup_extensions(
        model, plan, dataset, train_cfg, protect=protect_options(cfg, objects),
        adapt=asdict(cfg.adaptation), dry_run=cfg.output.dry_run, log=log,
    )  # fmt: skip
    given = "weight_decay" in overrides or train_cfg.weight_decay != TrainConfig().weight_decay
    train_cfg = train_config_for(train_cfg, built, weight_decay_given=given, log=log)
    if cfg.output.dry_run:
        return model
    every = [*extensions, *built]
    history = train(model, plan, dataset, train_cfg, log=log, callbacks=callbacks, extensions=every)
    model.info.update(history=history, metrics=evaluate_splits(model, dataset, plan, train_cfg))
    model.info.update(data=data_summary(dataset), train_config=train_cfg.to_dict())
    model.info["extensions"] = finish_extensions(built, model, dataset, train_cfg)
    model = race_scratch(model, dataset, cfg, log=log)
    model.info["seconds"] = round(time.perf_counter() - started, 2)
    save_and_report(model, dataset, cfg, train_cfg, log=log, own_checkpoint=own_checkpoint)
    return model


def race_scratch(model: GraftModel, dataset: Dataset, cfg: FitConfig, *, log: Log) -> GraftModel:
    """``--strategy auto``: when the features do not beat the raw input beyond noise, train the
    small network from scratch on the same budget and return whichever validates better.

    The advisor's probes compare a linear model on the frozen features with one on the raw input
    (downsampled pixels, TF-IDF); where the features are not clearly ahead, a network that learns
    its own features from the data may win (Fashion-MNIST at 50 per class: a small CNN 0.730,
    every transfer plan 0.706). Rather than guess, the race measures it: ``small_cnn`` (images)
    or ``small_text`` (texts), every layer at the full rate, for the run's total epochs, on the
    same splits (images at their own side, 32..128 px, as ``graft compare``'s ``small_cnn``, or
    at ``--race-image-size``). The winner on the validation split's accuracy (R² for regression;
    a tie keeps the pretrained model) is returned and saved; both scores go into the advice. Off with
    ``--no-race-scratch``, and skipped with a regularizer or domain adaptation (they need the
    pretrained source).
    """
    advice = model.info.get("advice")
    if not cfg.tuning.race_scratch or not advice or dataset.task not in _RACE_METRIC:
        return model
    facts = Facts(**advice["facts"])
    if not facts.scratch_contender:
        return model
    if cfg.protection.regularize or cfg.adaptation.adapt:
        log("race: skipped (a regularizer or domain adaptation needs the pretrained source)")
        return model
    name = SCRATCH_NETWORKS[dataset.input_kind]
    strategy, scratch_options, _ = FROM_SCRATCH
    options: dict[str, Any] = dict(scratch_options)
    epochs = cfg.tuning.total_epochs or cfg.tuning.epochs
    raw = facts.raw_input or f"{facts.pixel_size}x{facts.pixel_size} pixels"
    side = None
    if dataset.input_kind == "image":
        side = cfg.tuning.race_image_size or small_network_side(dataset.train.paths)
    why = (
        f"{raw} beat the features beyond noise"
        if facts.scratch_likely
        else f"the features do not beat {raw} beyond noise"
    )
    at = f", {side} px" if side else ""
    log(f"race: {why}; training {name} from scratch ({epochs} epochs{at}) to compare on validation")
    scratch_cfg = replace(
        cfg,
        model=replace(cfg.model, backbone=name, pretrained=False, weights=None, image_size=side),
        tuning=StrategyConfig(
            strategy=strategy, epochs=epochs, lr=cfg.tuning.lr, race_scratch=False, **options
        ),
        training=replace(
            cfg.training, checkpoint_dir=None, resume=False, log_csv=None, tensorboard=None
        ),
        protection=replace(cfg.protection, retention=False),
        output=OutputConfig(),
    )
    scratch = fit(dataset, scratch_cfg, log=lambda line: log(f"  {name}: {line}"))
    metric = _RACE_METRIC[dataset.task]
    ours, theirs = (m.info["metrics"]["val"][metric] for m in (model, scratch))
    winner = scratch if theirs > ours else model
    kept = name if winner is scratch else "the pretrained model"
    line = (
        f"race: val {metric} {ours:.4f} transfer ({advice['strategy']}) vs {theirs:.4f} "
        f"{name} from scratch: keeping {kept}"
    )
    log(line)
    race = {"network": name, "epochs": epochs, "metric": metric, "transfer": ours}
    race |= {"scratch": theirs, "kept": "scratch" if winner is scratch else "transfer"}
    race["scratch_seconds"] = scratch.info.get("seconds")  # its own fit (the winner's: the total)
    winner.info["advice"] = {**advice, "race": race, "lines": [*advice["lines"], f"  {line}"]}
    if "backbone_ranking" in model.info:  # how the pretrained contender was chosen
        winner.info["backbone_ranking"] = model.info["backbone_ranking"]
    return winner


#: The race's validation metric per task (higher is better).
_RACE_METRIC = {"classification": "accuracy", "regression": "r2"}


def resolve_config(
    config: FitConfig | None, overrides: Mapping[str, Any]
) -> tuple[FitConfig, dict[str, Any]]:
    """The configuration with overrides applied, and the built objects passed for names."""
    overrides = dict(overrides)
    objects = {k: overrides.pop(k) for k in OBJECT_KEYS if _is_object(overrides.get(k))}
    if "strategy" in objects and overrides.get("strategy_options"):
        raise ConfigError(
            "strategy_options given with a Strategy object: set them on the object instead"
        )
    names = {k: _object_name(v) for k, v in objects.items()}
    cfg = (config or FitConfig()).with_overrides(**names, **overrides)
    check_schedule(cfg.training.schedule)  # the schedule registry lives with the schedules
    return cfg, objects


def _is_object(value: Any) -> bool:
    return value is not None and not isinstance(value, str | Path)


def _object_name(obj: Any) -> str:
    if isinstance(obj, Backbone):
        return obj.spec.name
    return str(getattr(obj, "name", type(obj).__name__))


def training_for(cfg: FitConfig) -> TrainConfig:
    """The loop's options; with ``out``, checkpoints go to ``<out>.ckpt`` unless told otherwise."""
    t = cfg.training
    if cfg.output.out is not None and t.checkpoint_dir is None:
        return replace(t, checkpoint_dir=f"{cfg.output.out}.ckpt")
    return t


DEFAULT_TEXT_BACKBONE = "minilm"


def backbone_for(
    dataset: Dataset, cfg: FitConfig, objects: Mapping[str, Any], *, log: Log | None = None
) -> Backbone:
    """The configured backbone (see :func:`chosen_backbone`)."""
    return chosen_backbone(dataset, cfg, objects, log=log)[0]


def chosen_backbone(
    dataset: Dataset, cfg: FitConfig, objects: Mapping[str, Any], *, log: Log | None = None
) -> tuple[Backbone, AutoBackbone | None]:
    """The configured backbone, and how ``--backbone auto`` chose it (None: not auto).

    Text data with the default (image) backbone, or ``auto``, gets ``minilm``; ``auto`` on
    images ranks the bundled candidates on the data (at the input sizes the advisor would
    consider, unless ``--image-size`` is given) and builds the best at its size
    (:mod:`graft.workflows.auto_backbone`).
    """
    name = objects.get("backbone", cfg.model.backbone)
    size, picked = cfg.model.image_size, None
    if dataset.input_kind == "text" and name in (DEFAULT_BACKBONE, "auto"):
        name = DEFAULT_TEXT_BACKBONE
        if log is not None:
            log(f"text data: backbone {name} (pass --backbone to choose another text encoder)")
    elif name == "auto":
        picked = rank_auto(dataset, cfg, log=log or _quiet)
        name = picked.backbone
        torch.manual_seed(cfg.training.seed)  # as `--backbone NAME --image-size SIZE` builds it
    backbone = create_backbone(
        name, pretrained=cfg.model.pretrained, weights=cfg.model.weights,
        image_size=size, max_length=cfg.model.max_length,
    )  # fmt: skip
    return backbone, picked


def load_data_for(data: str | Path | Dataset, cfg: FitConfig) -> Dataset:
    """The dataset as the configuration reads and splits it (a Dataset passes through)."""
    d = cfg.data
    extra: dict[str, Any] = {}
    if d.label_separator is not None:  # the table reader (data/, helper D) takes it
        extra["label_separator"] = d.label_separator
    if d.text_column is not None:
        extra["text_column"] = d.text_column
    return load_dataset(
        data, task=d.task, label_column=d.label_column, path_column=d.path_column,
        target_columns=None if d.target_columns is None else list(d.target_columns),
        val_fraction=d.val_fraction, test_fraction=d.test_fraction,
        seed=cfg.training.seed, strict=d.strict, keep_duplicates=d.keep_duplicates, **extra,
    )  # fmt: skip


def require_validation(dataset: Dataset, cfg: FitConfig) -> None:
    """Refuse data that leaves no validation images (early stopping and the best weights need
    them), the same way for a run and for its ``--dry-run``.

    Raises:
        DataError: the validation split is empty.
    """
    if len(dataset.val) == 0:
        raise DataError(
            f"{dataset.source}: no validation images ({len(dataset.train)} for training, "
            f"--val-fraction {cfg.data.val_fraction}); raise --val-fraction, add a val split, "
            "or add images"
        )


def plan_for(
    model: GraftModel,
    dataset: Dataset,
    cfg: FitConfig,
    strategy: Strategy | None,
    train_cfg: TrainConfig,
    *,
    log: Log,
) -> Plan:
    """The strategy's plan; ``auto`` first measures the data (the advisor) and picks.

    Without ``--image-size``, images much smaller than a pretrained backbone's native size get
    a measured input size, whatever the strategy: :func:`graft.workflows.advise.resolve_auto`
    (with the rest of the advice) or :func:`graft.workflows.advise.resolve_size`.
    """
    t = cfg.tuning
    options = t.options()
    if strategy is None and t.strategy.replace("-", "_") == "auto":
        strategy = resolve_auto(
            model, dataset, train_cfg, options=options, log=log, seed=cfg.training.seed,
            size_given=cfg.model.image_size is not None,
        )  # fmt: skip
        options = {}
    elif cfg.model.image_size is None:  # any other strategy: small images
        resolve_size(model, dataset, train_cfg, log=log, seed=cfg.training.seed)
    if strategy is not None:
        return make_plan(model, strategy, epochs=t.epochs, lr=t.lr)
    return make_plan(model, t.strategy, epochs=t.epochs, lr=t.lr, **options)


def record_setup(model: GraftModel, cfg: FitConfig, plan: Plan) -> None:
    """What the run was asked to do, in ``model.info`` before training."""
    d = cfg.data
    model.info["config"] = cfg.to_dict()
    model.info["graft_version"] = __version__
    model.info["data_options"] = {
        "label_column": d.label_column,
        "target_columns": None if d.target_columns is None else list(d.target_columns),
        "path_column": d.path_column,
        "label_separator": d.label_separator,
        "text_column": d.text_column,
    }
    model.info["split"] = {
        "val_fraction": d.val_fraction,
        "test_fraction": d.test_fraction,
        "seed": cfg.training.seed,
    }
    model.info["plan"] = plan.to_dict()


def protect_options(cfg: FitConfig, objects: Mapping[str, Any]) -> dict[str, Any]:
    """The protection section as the extensions take it (a built regularizer passes through)."""
    out = asdict(cfg.protection)
    if "regularize" in objects:
        out["regularize"] = objects["regularize"]
    return out


def evaluate_splits(
    model: GraftModel,
    dataset: Dataset,
    plan: Plan | None = None,
    train_cfg: TrainConfig | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics on the validation split, and on the test split when there is one.

    When every stage of ``plan`` trained on stored features (the backbone never trained, as in
    feature extraction), the splits are scored from the feature store instead of running the
    backbone again: the validation features are there already, and the test features are stored
    by this first read, so a repeated fit runs no backbone at all.
    """
    frozen = (
        plan is not None
        and train_cfg is not None
        and all(on_stored_features(s, train_cfg) for s in plan.stages if s.epochs)
    )

    def score(split: str) -> dict[str, float]:
        if not frozen or train_cfg is None:
            return evaluate_readable(model, dataset, split)
        # Every process of a distributed run scores here: each computes its share of what is missing.
        samples = getattr(dataset, split)
        stored = stored_features(model, samples, train_cfg, strict=dataset.strict, spread=True)
        drop_unreadable(dataset, stored.skipped)  # listed in the record, as in training
        samples = readable(samples, stored)
        decoded = model.decode_features(stored.to_array())
        return model.task.metrics(samples.targets, decoded)

    metrics = {"val": score("val")}
    if dataset.test is not None and len(dataset.test):
        metrics["test"] = score("test")
    return metrics


def check_outputs(cfg: FitConfig, train_cfg: TrainConfig) -> bool:
    """Refuse ``--out`` and ``<out>.ckpt`` up front; True when the checkpoint is this run's own.

    The default checkpoint folder is removed after saving only when this run creates it (or
    resumes from graft's own checkpoint there); a user's folder of that name is refused.
    """
    if cfg.output.out is None or cfg.output.dry_run or not is_main_process():
        return False
    check_out(cfg.output.out)
    ckpt = train_cfg.checkpoint_dir
    if ckpt != f"{cfg.output.out}.ckpt":
        return False
    existed = Path(ckpt).exists()
    if existed and not is_checkpoint(Path(ckpt)):
        raise ConfigError(
            f"{ckpt}: exists and is not a graft checkpoint; graft would write its checkpoints "
            "there; move it, or pass --checkpoint-dir with another folder"
        )
    return not existed or train_cfg.resume


def save_and_report(
    model: GraftModel,
    dataset: Dataset,
    cfg: FitConfig,
    train_cfg: TrainConfig,
    *,
    log: Log,
    own_checkpoint: bool = True,
) -> None:
    """Save the model (this run's checkpoints removed once it is saved) and write the report."""
    out, report = cfg.output.out, cfg.output.report
    if not is_main_process():
        return
    if out is not None:
        model.save(out)
        if own_checkpoint and train_cfg.checkpoint_dir == f"{out}.ckpt":
            shutil.rmtree(train_cfg.checkpoint_dir, ignore_errors=True)
    if report is not None:
        from graft.evaluate.run_report import write_fit_report

        log(f"report: {write_fit_report(model, dataset, report)}")


def is_main_process() -> bool:
    """False in every process but the first of a distributed run (torchrun, accelerate launch)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _quiet(message: str) -> None:
    del message


def train_config(**options: Any) -> TrainConfig:
    """A TrainConfig from flat keyword options (schedule options included, ``schedule=name``)."""
    return FitConfig.create(**options).training


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


def data_summary(data: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"source": str(data.source), "task": data.task}
    out.update({f"n_{k}": len(v) for k, v in data.splits().items()})
    if data.class_names is not None:
        out["classes"] = list(data.class_names)
        out["class_counts"] = data.class_counts()
    if data.target_names is not None:
        out["targets"] = list(data.target_names)
    out["skipped"] = [str(p) for p, _ in data.skipped]
    if data.duplicates:
        out["duplicates"] = dict(data.duplicates)
    return out


def describe_data(data: Dataset) -> str:
    parts = ", ".join(f"{k} {len(v)}" for k, v in data.splits().items())
    copies = data.describe_duplicates()
    parts += f"; {copies}" if copies else ""
    return f"data: {data.source} ({data.task}, {data.describe()}; {parts})"


def lr_find(
    data: str | Path | Dataset,
    *,
    strategy: str | Strategy = "two_stage",
    stage: int = 0,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    plot: str | Path | None = None,
    **overrides: Any,
) -> Any:
    """Learning-rate range test on one stage of a strategy's plan; returns an LRFindResult.

    The defaults match ``graft lr-find`` (strategy ``two_stage``).

    Args:
        strategy: whose plan to test (a name or a Strategy).
        stage: which stage of the plan to test (0 = the first, usually the head).
        plot: write the loss-vs-rate plot there (PNG).
        **overrides: fields of :class:`~graft.config.FitConfig` (``label_column``,
            ``target_columns``, ``backbone``, ``batch_size``, ``seed``, ``lr``, ``top``, ...).
    """
    from graft.training.lr_find import lr_find as run

    if isinstance(strategy, str):
        overrides["strategy"] = strategy
    cfg, objects = resolve_config(None, overrides)
    dataset = load_data_for(data, cfg)
    torch.manual_seed(cfg.training.seed)
    bb = backbone_for(dataset, cfg, objects)
    model = GraftModel(bb, task_spec_for(dataset, loss_weights=cfg.data.loss_weights))
    chosen = strategy if isinstance(strategy, Strategy) else cfg.tuning.strategy
    options = {} if isinstance(strategy, Strategy) else cfg.tuning.options()
    plan = make_plan(model, chosen, epochs=1, lr=cfg.tuning.lr, **options)
    if not 0 <= stage < len(plan.stages):
        raise ConfigError(f"--stage {stage}: the plan has stages 0..{len(plan.stages) - 1}")
    result = run(
        model, plan, dataset, cfg.training, stage_index=stage, start_lr=start_lr,
        end_lr=end_lr, steps=steps,
    )  # fmt: skip
    if plot is not None:
        result.plot(plot)
    return result
