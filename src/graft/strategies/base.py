"""A strategy is a plan: a list of stages you can print and test before training.

A :class:`Stage` says for how long to train, at what base learning rate, and with what
multiplier for each layer group (input side first, the head last; 0 = frozen). The training
loop applies one stage at a time and builds a fresh optimizer for each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal

from graft._registry import Registry
from graft.config import BN_CHOICES
from graft.errors import ConfigError

BNPolicy = Literal["auto", "frozen", "eval", "train", "train_bn_only"]
BN_POLICIES: tuple[str, ...] = BN_CHOICES


@dataclass(frozen=True)
class Stage:
    """One stage of a plan.

    Args:
        name: a short label (``head``, ``fine-tune``, ``unfreeze-3``).
        epochs: maximum epochs for the stage.
        lr: base learning rate; group ``i`` trains at ``lr * multipliers[i]``.
        multipliers: one per backbone layer group (input side first), then the head; 0 = frozen.
        bn: BatchNorm policy: ``auto`` (the default: ``eval`` for a pretrained backbone,
            ``frozen`` for a randomly initialised one; see
            :func:`graft.training.params.freeze_batchnorm`), ``frozen`` (frozen parts in
            inference mode), ``eval`` (every BatchNorm in inference mode: statistics never move, weights of
            trainable groups still train; for small data and small batches),
            ``train`` (statistics update everywhere), ``train_bn_only`` (only norm layers and
            the head train).
        patience: early stopping on the monitored validation metric; None disables it.
        freeze_patterns: parameter-name patterns (fnmatch) frozen whatever the group says.
        kind: ``task`` (the labeled data and the task's loss) or ``pretext`` (a self-supervised
            stage whose data and loss come from an extension, e.g. rotation on unlabeled
            target images; prepended by :func:`graft.workflows.extensions.setup_extensions`).
    """

    name: str
    epochs: int
    lr: float
    multipliers: tuple[float, ...]
    bn: BNPolicy = "auto"
    patience: int | None = None
    freeze_patterns: tuple[str, ...] = ()
    kind: Literal["task", "pretext"] = "task"

    def __post_init__(self) -> None:
        if self.kind not in ("task", "pretext"):
            raise ValueError(f"stage {self.name!r}: kind must be 'task' or 'pretext'")
        if self.epochs < 0:
            raise ValueError(f"stage {self.name!r}: epochs must be >= 0, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"stage {self.name!r}: lr must be > 0, got {self.lr}")
        if any(m < 0 for m in self.multipliers):
            raise ValueError(f"stage {self.name!r}: multipliers must be >= 0")
        if self.bn not in BN_POLICIES:
            raise ValueError(f"stage {self.name!r}: bn must be one of {BN_POLICIES}")

    @property
    def backbone_frozen(self) -> bool:
        """True when no backbone parameter trains: the stage can run on stored features."""
        return (
            all(m == 0 for m in self.multipliers[:-1])
            and self.bn != "train_bn_only"
            and self.bn != "train"
        )

    def group_lrs(self) -> tuple[float, ...]:
        return tuple(self.lr * m for m in self.multipliers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stage:
        d = dict(d)
        d["multipliers"] = tuple(d["multipliers"])
        d["freeze_patterns"] = tuple(d.get("freeze_patterns", ()))
        return cls(**d)


@dataclass(frozen=True)
class Plan:
    """An ordered list of stages over named layer groups (the head is the last group)."""

    strategy: str
    groups: tuple[str, ...]
    stages: tuple[Stage, ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for s in self.stages:
            if len(s.multipliers) != len(self.groups):
                raise ValueError(
                    f"stage {s.name!r} has {len(s.multipliers)} multipliers for "
                    f"{len(self.groups)} groups ({', '.join(self.groups)})"
                )

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "groups": list(self.groups),
            "stages": [s.to_dict() for s in self.stages],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(
            strategy=d["strategy"],
            groups=tuple(d["groups"]),
            stages=tuple(Stage.from_dict(s) for s in d["stages"]),
            notes=tuple(d.get("notes", ())),
        )

    def table(self, trainable: Sequence[int] | None = None) -> str:
        """The plan as text: stage x group -> learning rate (0 = frozen)."""
        from graft.strategies.render import plan_table

        return plan_table(self, trainable)


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """Base class: a frozen config whose :meth:`plan` turns layer groups into stages.

    Subclasses register with ``@STRATEGIES.register("name")``. Common options:

    Args:
        layer_decay: discriminative learning rates: group ``i`` counted from the head trains at
            ``layer_decay ** depth`` times the stage rate (1.0 = off; 0.7 is a common choice).
        group_lrs: explicit per-backbone-group multipliers, input side first (overrides
            ``layer_decay``).
        bn: BatchNorm policy for every stage.
        patience: early-stopping patience in epochs for every stage (None = off).
        freeze_patterns: parameter-name patterns (fnmatch) never trained.
    """

    name: ClassVar[str] = ""
    layer_decay: float = 1.0
    group_lrs: tuple[float, ...] | None = None
    bn: BNPolicy = "auto"
    patience: int | None = 3
    freeze_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}")

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # helpers for subclasses -------------------------------------------------------------
    def depth_multipliers(self, n_backbone: int, trainable_top: int) -> tuple[float, ...]:
        """Multipliers for backbone groups with the top ``trainable_top`` unfrozen, then head 1.0."""
        trainable_top = max(0, min(trainable_top, n_backbone))
        self._check_group_lrs(n_backbone)
        mults = [0.0] * n_backbone
        for i in range(n_backbone - trainable_top, n_backbone):
            depth = n_backbone - i  # 1 for the group next to the head
            if self.group_lrs is not None:
                mults[i] = float(self.group_lrs[i])
            else:
                mults[i] = float(self.layer_decay**depth)
        return (*mults, 1.0)

    def _check_group_lrs(self, n_backbone: int) -> None:
        """One explicit rate per backbone group, or a ConfigError that says how many."""
        if self.group_lrs is not None and len(self.group_lrs) != n_backbone:
            raise ConfigError(
                f"strategy {self.name!r} option group_lrs has {len(self.group_lrs)} rates but "
                f"the backbone has {n_backbone} layer groups: give {n_backbone} (input side first)"
            )

    def stage(self, name: str, epochs: int, lr: float, mults: tuple[float, ...]) -> Stage:
        return Stage(
            name=name,
            epochs=epochs,
            lr=lr,
            multipliers=mults,
            bn=self.bn,
            patience=self.patience,
            freeze_patterns=self.freeze_patterns,
        )


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def create_strategy(name: str | Strategy, **options: Any) -> Strategy:
    """A strategy by registered name (``two-stage``) with options, or the object itself."""
    if isinstance(name, Strategy):
        if options:
            raise ConfigError(
                f"strategy options {', '.join(sorted(options))} given with a Strategy object: "
                "set them on the object instead (e.g. FineTuneTop(top=3))"
            )
        return name
    import graft.strategies  # noqa: F401  (registers the built-in strategies)

    cls = STRATEGIES.get(name)
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(
            f"strategy {name!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(valid))}"
        )
    try:
        # None is kept where the option allows it (``top=None``: every group), else dropped.
        nullable = {f.name for f in fields(cls) if "None" in str(f.type)}
        return cls(**{k: v for k, v in options.items() if v is not None or k in nullable})
    except ValueError as e:
        raise ConfigError(f"strategy {name!r}: {e}") from e


__all__ = ["BN_POLICIES", "STRATEGIES", "Plan", "Stage", "Strategy", "create_strategy"]
