"""One run configuration: every option of ``graft fit`` / ``graft adapt`` / ``graft.fit`` once.

Torch-free (stdlib and :mod:`graft.errors` only), so the command line can build its parser
without importing torch. Each field carries its default and its help text exactly once
(``metadata["help"]``); the CLI flags are generated from the fields (kebab-case of the name, or
``metadata["flag"]``), and the whole :class:`FitConfig` is saved in the artifact, so a run can
be repeated from its saved model (``graft fit DATA --config MODEL_DIR``).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from graft.errors import ConfigError

DEFAULT_BACKBONE = "efficientnet_lite0"
#: The small network trained from scratch per input kind: compare's baselines, auto's race.
SCRATCH_NETWORKS = {"image": "small_cnn", "text": "small_text"}
SPLIT_FRACTION = 0.15  # default validation and test shares when the data has no such split
CONFIG_VERSION = 1
TASKS = ("classification", "regression", "multilabel", "multitask")
ALL = "all"  # --top all: every layer group
#: BatchNorm policies (``--bn``; :class:`graft.strategies.base.Stage` documents each).
BN_CHOICES = ("auto", "frozen", "eval", "train", "train_bn_only")


def option(default: Any, help: str, **meta: Any) -> Any:
    """A config field: its default and help text, plus CLI hints (flag, choices, api_only...)."""
    return field(default=default, metadata={"help": help, **meta})


def flag_name(f: Field[Any]) -> str:
    """The CLI flag of a field: ``metadata["flag"]`` or ``--`` + the name in kebab-case."""
    return str(f.metadata.get("flag", "--" + f.name.replace("_", "-")))


def _tuple(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(value.split(",")) if isinstance(value, str) else tuple(value)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _in_range(name: str, value: float | None, low: float, high: float, what: str) -> None:
    """An optional number in ``(low, high]`` (NaN refused); the error names the flag."""
    _check(
        value is None or (low < value <= high and not math.isnan(value)),
        f"--{_flag(name)} must be {what}, got {value}",
    )


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which data, which task, and how it is split."""

    task: str | None = option(
        None, "inferred when omitted (folders: classification)", choices=TASKS
    )
    label_column: str | None = option(None, "table column holding class labels")
    label_separator: str | None = option(
        None, "multilabel: separator of labels in a cell (default ;)"
    )
    target_columns: tuple[str, ...] | None = option(
        None, "regression columns, comma-separated", parse="list"
    )
    path_column: str | None = option(
        None, "table column holding image paths (relative to the table)"
    )
    text_column: str | None = option(
        None, "table column holding texts (the data is text; folders of .txt files need none)"
    )
    val_fraction: float = option(SPLIT_FRACTION, "validation share when no val split is given")
    test_fraction: float = option(SPLIT_FRACTION, "test share when no test split is given")
    strict: bool = option(False, "stop at an unreadable image instead of skipping it")
    keep_duplicates: bool = option(
        False, "keep val/test files whose bytes are also in train (dropped by default)"
    )
    loss_weights: dict[str, float] | None = option(  # noqa: RUF009 (a field, default None)
        None, "multitask: loss weight per task, e.g. species=1,weight=0.5", parse="weights"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_columns", _tuple(self.target_columns))
        _check(
            self.task in (None, *TASKS),
            f"--task must be one of {', '.join(TASKS)}, got {self.task!r}",
        )
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _check(0 <= value < 1, f"--{name.replace('_', '-')} must be in [0, 1), got {value}")
        _check(
            self.val_fraction + self.test_fraction < 1,
            "--val-fraction + --test-fraction must leave training data (sum < 1)",
        )


@dataclass(frozen=True, kw_only=True)
class BackboneConfig:
    """The pretrained network and its new head."""

    backbone: str = option(
        DEFAULT_BACKBONE,
        "bundled name, timm:<name>, or a bare timm name (see `graft models`); auto ranks the "
        "bundled image backbones on your data (graft rank; without --image-size, images much "
        "smaller than a backbone's own size rank it at each size the advisor would measure) "
        "and takes the best backbone and size",
    )
    weights: str | None = option(
        None, "local weights file (safetensors or state dict) for a timm architecture"
    )
    pretrained: bool = option(True, "random initialisation (only when you want it)")
    image_size: int | None = option(
        None,
        "the backbone's input size (square); without it, images much smaller than a pretrained "
        "backbone's own size get a smaller one, measured by linear probes (--backbone auto: "
        "ranked with the backbone)",
    )
    max_length: int | None = option(
        None, "text backbones: tokens read per text (longer texts are truncated)"
    )
    dropout: float = option(0.0, "dropout before the head")

    def __post_init__(self) -> None:
        _check(0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}")
        _check(
            self.image_size is None or self.image_size >= 8,
            f"--image-size must be >= 8, got {self.image_size}",
        )
        _check(
            self.max_length is None or self.max_length >= 2,
            f"--max-length must be >= 2 tokens, got {self.max_length}",
        )


@dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """Which parts train when; the options left None take the strategy's own default."""

    strategy: str = option(
        "auto",
        "auto (the advisor measures your data and picks; the default), feature-extraction, "
        "fine-tune-top, full, two-stage, progressive",
    )
    epochs: int = option(5, "epochs per stage")
    lr: float = option(1e-3, "base learning rate (the head's)")
    top: int | str | None = option(
        None, "layer groups to unfreeze, counted from the head, or all", parse="top", option=True
    )
    fraction: float | None = option(None, "fraction of layer groups to unfreeze", option=True)
    lr_factor: float | None = option(
        None, "fine-tuning rate as a fraction of --lr (0.01-0.1)", option=True
    )
    head_epochs: int | None = option(None, "epochs of the head-only stage (two-stage)", option=True)
    layer_decay: float | None = option(
        None, "discriminative rates: factor per group from the head down", option=True
    )
    patience: int | None = option(None, "early-stopping patience in epochs", option=True)
    bn: str | None = option(
        None,
        "BatchNorm policy: auto (default: every BatchNorm in inference mode for a pretrained "
        "backbone, as frozen for a randomly initialised one), frozen (frozen parts in "
        "inference mode), eval (every BatchNorm in inference mode), train, train_bn_only",
        choices=BN_CHOICES,
        option=True,
    )
    freeze_patterns: tuple[str, ...] | None = option(
        None, "never train parameters matching this pattern", flag="--freeze", parse="append",
        option=True,
    )  # fmt: skip
    max_groups: int | None = option(
        None, "progressive: stop after unfreezing this many groups", option=True
    )
    lr_decay: float | None = option(
        None, "progressive: rate factor from one stage to the next", option=True
    )
    stage_epochs: int | None = option(None, "progressive: epochs per stage", option=True)
    total_epochs: int | None = option(
        None, "auto: a total epoch budget split among the chosen plan's stages", option=True
    )
    race_scratch: bool = option(
        True,
        "auto: when the frozen features do not beat the raw input beyond noise, also train the "
        "small network from scratch (small_cnn, small_text) on the same budget and keep the "
        "one better on validation",
    )
    race_image_size: int | None = option(
        None,
        "auto's race: input side of the small CNN in pixels (default: the images' own side "
        "within 32..128 px, as graft compare's small_cnn)",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "freeze_patterns", _tuple(self.freeze_patterns))
        _check(
            self.top is None or self.top == ALL or (isinstance(self.top, int) and self.top >= 0),
            f"--top must be a number of groups >= 0 or {ALL!r}, got {self.top!r}",
        )
        _check(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        _check(self.lr > 0 and math.isfinite(self.lr), f"--lr must be > 0, got {self.lr}")
        _in_range("fraction", self.fraction, 0, 1, "a fraction of the layer groups in (0, 1]")
        _in_range("lr_factor", self.lr_factor, 0, math.inf, "a factor of --lr > 0")
        _in_range("layer_decay", self.layer_decay, 0, math.inf, "a factor > 0")
        _in_range("lr_decay", self.lr_decay, 0, math.inf, "a factor > 0")
        _check(
            self.race_image_size is None or self.race_image_size >= 8,
            f"--race-image-size must be >= 8, got {self.race_image_size}",
        )
        _check(
            self.total_epochs is None or self.total_epochs >= 1,
            f"--total-epochs must be >= 1, got {self.total_epochs}",
        )
        for name in ("head_epochs", "patience", "stage_epochs", "max_groups"):
            value = getattr(self, name)
            _check(value is None or value >= 0, f"--{_flag(name)} must be >= 0, got {value}")
        _check(
            self.bn in (None, *BN_CHOICES),
            f"--bn must be one of {', '.join(BN_CHOICES)}, got {self.bn!r}",
        )

    def options(self) -> dict[str, Any]:
        """The strategy options that were set (None: the strategy's own default).

        ``top="all"`` becomes the strategy's ``top=None`` (every layer group).
        """
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.metadata.get("option") and getattr(self, f.name) is not None
        }
        if out.get("top") == ALL:
            out["top"] = None
        return out


@dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """The learning-rate schedule of every stage (the name is checked where the registry is)."""

    name: str = option(
        "cosine",
        "cosine (default), linear, constant, one_cycle or plateau (exponential: API only)",
        flag="--schedule",
    )
    warmup: float = option(
        0.0, "warm-up length as a fraction of the stage's steps (0-0.5), linear from 0"
    )
    min_lr_ratio: float = option(0.0, "the rate decays to lr * min_lr_ratio")
    plateau_factor: float = option(
        0.5, "plateau: multiply the rate by this when the monitor stalls"
    )
    plateau_patience: int = option(1, "plateau: epochs without improvement before reducing")
    growth: float = option(
        1.0,
        "exponential: multiply the rate by this after every optimizer step (the "
        "learning-rate range test's schedule)",
        api_only=True,
    )

    def __post_init__(self) -> None:
        _check(
            0 <= self.warmup <= 0.5,
            f"--warmup must be a fraction of the stage in [0, 0.5], got {self.warmup}",
        )
        _check(
            0 <= self.min_lr_ratio < 1, f"--min-lr-ratio must be in [0, 1), got {self.min_lr_ratio}"
        )
        _check(self.growth > 0, f"schedule growth must be positive, got {self.growth}")

    @property
    def per_epoch(self) -> bool:
        """True when the schedule steps once per epoch on the validation monitor."""
        return self.name.replace("-", "_").lower() == "plateau"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Options of the loop (not of the strategy)."""

    batch_size: int = option(32, "samples per optimizer step (all processes together)")
    weight_decay: float = option(1e-4, "AdamW weight decay (not on biases and norm weights)")
    seed: int = option(0, "seeds every epoch from (seed, stage, epoch): reproducible, resumable")
    num_workers: int = option(0, "DataLoader worker processes for image decoding")
    augment: bool = option(True, "light training augmentation in stages that run the backbone")
    cpu: bool = option(False, "force the CPU even when an accelerator is present")
    mixed_precision: str = option(
        "no", "no, fp16 or bf16 (where the device supports it)", choices=("no", "fp16", "bf16")
    )
    channels_last: bool = option(
        True,
        "channels-last memory layout while an image backbone trains (faster convolutions on "
        "many CPUs and GPUs: 1.23x per step for Lite0 on a 2-core CPU; the same results up to "
        "float rounding)",
    )
    use_cache: bool = option(True, "train frozen-backbone stages on stored features")
    linear_start: bool = option(
        True,
        "start the first head stage on stored features from the head fitted to convergence "
        "(L-BFGS, L2 with C=1 on standardised features: the advisor's linear probe); its "
        "epochs refine it and the stage keeps whichever validates best",
    )
    cache_dir: str | None = option(
        None, "cache folder, features in DIR/features (default $GRAFT_CACHE_DIR or ~/.cache/graft)"
    )
    progress: bool = option(True, "progress bars", both=True)
    monitor: str = option(
        "val_loss",
        "validation metric for early stopping and best weights (val_loss, val_accuracy, "
        "val_macro_f1, val_rmse, ...)",
    )
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig, metadata={"section": True})
    grad_clip: float | None = option(None, "clip the gradient norm to this value (None = off)")
    grad_accum: int = option(1, "accumulate gradients over this many batches per optimizer step")
    class_weights: str | None = option(
        None, "balanced weights the loss by inverse class frequency", choices=("balanced",)
    )
    sampler: str | None = option(
        None, "weighted draws training batches with inverse class frequency", choices=("weighted",)
    )
    checkpoint_dir: str | None = option(
        None, "write a checkpoint there after every epoch (default with --out: <out>.ckpt)"
    )
    resume: bool = option(False, "continue from the checkpoint in --checkpoint-dir")
    log_csv: str | None = option(None, "append per-epoch metrics to this CSV file")
    tensorboard: str | None = option(
        None, "write TensorBoard scalars to this folder (needs tensorboard)"
    )

    def __post_init__(self) -> None:
        if isinstance(self.schedule, Mapping):
            object.__setattr__(self, "schedule", _build(ScheduleConfig, self.schedule, "schedule"))
        _check(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _check(
            self.weight_decay >= 0 and math.isfinite(self.weight_decay),
            f"--weight-decay must be >= 0, got {self.weight_decay}",
        )
        _in_range("grad_clip", self.grad_clip, 0, math.inf, "a gradient norm > 0")
        _check(
            self.mixed_precision in ("no", "fp16", "bf16"),
            f"--mixed-precision must be no, fp16 or bf16, got {self.mixed_precision!r}",
        )
        _check(self.grad_accum >= 1, f"--grad-accum must be >= 1, got {self.grad_accum}")
        _check(
            self.class_weights in (None, "balanced"),
            f"--class-weights must be 'balanced', got {self.class_weights!r}",
        )
        _check(
            self.sampler in (None, "weighted"),
            f"--sampler must be 'weighted', got {self.sampler!r}",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, the schedule nested."""
        return _to_dict(self)


@dataclass(frozen=True, kw_only=True)
class ProtectConfig:
    """Keep what the backbone knew, in stages that train the backbone."""

    regularize: str | None = option(
        None,
        "ewc (Fisher-weighted pull to the pretrained weights), l2sp (pull to the pretrained "
        "weights, weight decay on the head), lwf (distil the original model)",
    )
    regularize_strength: float | None = option(
        None,
        "the method's strength: ewc lam (default 10), l2sp alpha (default 10), lwf lam (default 1)",
    )
    regularize_options: dict[str, Any] | None = option(  # noqa: RUF009 (a field, default None)
        None,
        "its other options, e.g. temperature=2 (lwf), beta=0.01 (l2sp), "
        "samples=256,batch=16,fisher=sampled (ewc)",
        parse="options",
    )
    ewc_data: str | None = option(
        None,
        "source-like images for EWC's Fisher (default: the target training images, labelled "
        "by the original model's own predictions)",
    )
    retention: bool = option(
        True, "the retention report (agreement with the original model after training)"
    )
    retention_data: str | None = option(
        None, "reference images for the retention report (default: the test, else val split)"
    )


@dataclass(frozen=True, kw_only=True)
class AdaptConfig:
    """Domain adaptation to unlabeled target images (target labels never train)."""

    unlabeled: str | None = option(
        None, "unlabeled target images (a folder or a table of paths) to adapt to"
    )
    adapt: str | None = option(
        None,
        "with --unlabeled: dann (adversarial, the default), coral, mmd (feature alignment), "
        "rotation (pre-training)",
    )
    adapt_options: dict[str, Any] | None = option(  # noqa: RUF009 (a field, default None)
        None,
        "the method's options, e.g. weight=0.5,hidden=256 (DANN), epochs=2,lr=1e-4 (rotation)",
        parse="options",
    )
    target_eval: str | None = option(
        None,
        "labeled target images used only to report target metrics per epoch and at the end "
        "(never to train or to select weights)",
    )


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """What the run writes."""

    out: str | None = option(
        None, "where to save the trained model", cli_default="graft-runs/model"
    )
    report: str | None = option(None, "write an HTML report there (plan, metrics, curves, plots)")
    dry_run: bool = option(False, "print the plan and stop")


@dataclass(frozen=True, kw_only=True)
class DistributedConfig:
    """Scale-out through torchrun (command line only: the CLI relaunches itself)."""

    devices: int = option(1, "processes (GPUs, or CPU workers) on this machine")
    num_nodes: int = option(1, "machines taking part")
    node_rank: int = option(0, "this machine's rank (multi-node)")
    master_addr: str = option("127.0.0.1", "address of the rank-0 machine")
    master_port: int = option(29500, "port on the rank-0 machine")

    def __post_init__(self) -> None:
        _check(self.devices >= 1, f"--devices must be >= 1, got {self.devices}")
        _check(self.num_nodes >= 1, f"--num-nodes must be >= 1, got {self.num_nodes}")

    @property
    def processes(self) -> int:
        return self.devices * self.num_nodes


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": BackboneConfig,
    "tuning": StrategyConfig,
    "training": TrainConfig,
    "protection": ProtectConfig,
    "adaptation": AdaptConfig,
    "output": OutputConfig,
}


@dataclass(frozen=True, kw_only=True)
class FitConfig:
    """The whole configuration of a ``graft fit`` run, section by section.

    Build one from flat names with :meth:`FitConfig.create` (``epochs=3, regularize="ewc"``),
    change one with :meth:`with_overrides`, save it with :meth:`to_dict` (JSON) and read it back
    with :meth:`from_dict` / :meth:`load`.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: BackboneConfig = field(default_factory=BackboneConfig)
    tuning: StrategyConfig = field(default_factory=StrategyConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    protection: ProtectConfig = field(default_factory=ProtectConfig)
    adaptation: AdaptConfig = field(default_factory=AdaptConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        _check(
            not self.training.resume or bool(self.training.checkpoint_dir or self.output.out),
            "--resume needs a checkpoint folder (--checkpoint-dir or --out)",
        )

    @classmethod
    def create(cls, **overrides: Any) -> FitConfig:
        """The defaults with flat overrides (``epochs=3``, ``schedule="linear"``)."""
        return cls().with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> FitConfig:
        """A copy with flat names set; an unknown name raises ConfigError naming close ones.

        ``strategy_options={"top": 3}`` (the older spelling) is accepted: its keys must be
        strategy options.
        """
        overrides = dict(overrides)
        for key, value in dict(overrides.pop("strategy_options", None) or {}).items():
            _check(
                key in STRATEGY_OPTIONS,
                f"strategy_options: unknown option {key!r}"
                + _suggest(key, STRATEGY_OPTIONS)
                + f"; options: {', '.join(STRATEGY_OPTIONS)}",
            )
            # In a strategy's own options, top=None means every group (spelled "all" here).
            overrides.setdefault(key, ALL if key == "top" and value is None else value)
        paths = flat_fields()
        changes: dict[tuple[str, ...], Any] = {}
        for name, value in overrides.items():
            if name not in paths:
                raise ConfigError(f"unknown option {name!r}{_suggest(name, paths)}")
            changes[paths[name]] = value
        return _apply(self, changes)

    def get(self, name: str) -> Any:
        """A value by flat name (``epochs``, ``schedule``, ``regularize``)."""
        paths = flat_fields()
        if name not in paths:
            raise ConfigError(f"unknown option {name!r}{_suggest(name, paths)}")
        value: Any = self
        for part in paths[name]:
            value = getattr(value, part)
        return value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"version": 1, "data": {...}, "model": {...}, ...}``."""
        return {"version": CONFIG_VERSION, **_to_dict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitConfig:
        """The inverse of :meth:`to_dict`; unknown keys raise ConfigError naming close ones."""
        data = dict(data)
        version = data.pop("version", CONFIG_VERSION)
        _check(
            version == CONFIG_VERSION,
            f"configuration version {version} is not {CONFIG_VERSION}: upgrade graft",
        )
        return _build(cls, data, "configuration")

    @classmethod
    def load(cls, path: str | Path) -> FitConfig:
        """From a JSON file, or a saved model folder (its run record's configuration)."""
        p = Path(path)
        if p.is_dir():
            return _from_model_dir(p)
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except FileNotFoundError:
            raise ConfigError(f"--config {p}: no such file or folder") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"--config {p}: not JSON ({e})") from None


STRATEGY_OPTIONS = tuple(f.name for f in fields(StrategyConfig) if f.metadata.get("option"))


def _from_model_dir(p: Path) -> FitConfig:
    config_file = p / "config.json"
    try:
        saved = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"--config {p}: not a saved graft model ({e})") from None
    record = saved.get("record") or saved.get("info") or {}
    if not record.get("config"):
        raise ConfigError(
            f"--config {p}: this model has no saved configuration (saved by graft 0.1.0); "
            "pass the options again, or a configuration JSON file"
        )
    return FitConfig.from_dict(record["config"])


def iter_fields(
    cls: type, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Field[Any]]]:
    """Every leaf field of a config class, with its attribute path (sections walked)."""
    for f in fields(cls):
        if f.metadata.get("section") or (f.name in SECTIONS and cls is FitConfig):
            yield from iter_fields(_section_type(cls, f), (*prefix, f.name))
        else:
            yield (*prefix, f.name), f


def _section_type(cls: type, f: Field[Any]) -> type:
    if cls is FitConfig:
        return SECTIONS[f.name]
    return ScheduleConfig  # the only nested section below the top


def flat_name(path: tuple[str, ...]) -> str:
    """The flat name of a field path (``("training", "schedule", "name")`` -> ``schedule``)."""
    return "schedule" if path[-2:] == ("schedule", "name") else path[-1]


def flat_fields(cls: type = FitConfig) -> dict[str, tuple[str, ...]]:
    """Flat name -> attribute path of every leaf field."""
    return {flat_name(path): path for path, _ in iter_fields(cls)}


def _suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _apply(obj: Any, changes: Mapping[tuple[str, ...], Any]) -> Any:
    direct = {path[0]: v for path, v in changes.items() if len(path) == 1}
    nested: dict[str, dict[tuple[str, ...], Any]] = {}
    for path, v in changes.items():
        if len(path) > 1:
            nested.setdefault(path[0], {})[path[1:]] = v
    for name, sub in nested.items():
        direct[name] = _apply(getattr(obj, name), sub)
    return replace(obj, **direct) if direct else obj


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if hasattr(value, "__dataclass_fields__"):
            out[f.name] = _to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif isinstance(value, dict):
            out[f.name] = dict(value)
        else:
            out[f.name] = value
    return out


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if isinstance(data, cls):
        return data
    _check(isinstance(data, Mapping), f"{where}: expected an object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}{_suggest(unknown[0], known)}; "
            f"keys: {', '.join(known)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = known[name]
        is_section = f.metadata.get("section") or (cls is FitConfig and name in SECTIONS)
        kwargs[name] = (
            _build(_section_type(cls, f), value, f"{where}.{name}") if is_section else value
        )
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def field_default(f: Field[Any]) -> Any:
    """A field's default (None for sections)."""
    return None if f.default is MISSING else f.default


__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_BACKBONE",
    "SPLIT_FRACTION",
    "STRATEGY_OPTIONS",
    "AdaptConfig",
    "BackboneConfig",
    "DataConfig",
    "DistributedConfig",
    "FitConfig",
    "OutputConfig",
    "ProtectConfig",
    "ScheduleConfig",
    "StrategyConfig",
    "TrainConfig",
    "flag_name",
    "flat_fields",
    "iter_fields",
    "option",
]
