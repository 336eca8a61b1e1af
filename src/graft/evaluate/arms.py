"""The contenders of ``graft compare`` (arms) and the training budget they share.

An :class:`Arm` is one way to train a model on the user's data: from scratch (the compared
backbone randomly initialised, a small CNN sized for the data's images, or a small text network
over the texts' token ids) or by transfer (feature extraction, two-stage or progressive
fine-tuning of the pretrained backbone). An arm declares the input kinds it reads; on other
data it is skipped, with the reason said. Every arm is run
through :func:`graft.fit` on the same :class:`~graft.data.Dataset` with the same seed.

A :class:`Budget` is the same number of epochs (passes over the training set) for every arm,
split among the arm's stages, so no arm wins by training longer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from graft._registry import Registry
from graft.errors import ConfigError
from graft.strategies.auto import FROM_SCRATCH
from graft.strategies.budget import split_epochs

Kind = Literal["scratch", "transfer"]


@dataclass(frozen=True, kw_only=True)
class Arm:
    """One contender of a comparison.

    Args:
        strategy: the registered strategy it trains with.
        kind: ``scratch`` (random initialisation) or ``transfer`` (pretrained weights).
        backbone: a fixed backbone (``small_cnn``); None trains the compared backbone.
        inputs: the input kinds it reads (``image``, ``text``); skipped on other data.
        options: strategy options besides the epoch split (e.g. ``{"lr_factor": 1.0}``).
        stages: how many stages share the epochs (two-stage: 2, progressive: 1 + max_groups).
        description: one line for the table's legend and the report.
    """

    strategy: str
    kind: Kind
    backbone: str | None = None
    inputs: tuple[str, ...] = ("image", "text")
    options: dict[str, Any] = field(default_factory=dict)
    stages: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("scratch", "transfer"):
            raise ValueError(f"arm kind must be 'scratch' or 'transfer', got {self.kind!r}")
        if self.stages < 1:
            raise ValueError(f"an arm has at least one stage, got {self.stages}")

    @property
    def pretrained(self) -> bool:
        return self.kind == "transfer"

    def skip_reason(self, input_kind: str) -> str | None:
        """Why the arm does not run on ``input_kind`` data (None: it runs)."""
        if input_kind in self.inputs:
            return None
        return f"{self.backbone or self.strategy} reads {' and '.join(self.inputs)}s, not {input_kind}s"

    def fit_options(self, epochs: int) -> tuple[int, dict[str, Any]]:
        """``epochs`` and ``strategy_options`` for :func:`graft.fit` from the arm's total epochs.

        The split rule is :func:`graft.strategies.budget.split_epochs` (shared with
        ``Auto(total_epochs=...)``, the ``auto`` arm's plan).
        """
        return split_epochs(self.strategy, self.options, epochs, stages=self.stages)


ARMS: Registry[Arm] = Registry("comparison arm")

ARMS.register("scratch")(
    Arm(
        strategy=FROM_SCRATCH[0],
        kind="scratch",
        options=FROM_SCRATCH[1],
        description="the compared architecture, randomly initialised, every layer trained",
    )
)
ARMS.register("small_cnn")(
    Arm(
        strategy=FROM_SCRATCH[0],
        kind="scratch",
        backbone="small_cnn",
        inputs=("image",),
        options=FROM_SCRATCH[1],
        description="a small VGG-style CNN sized for the data, trained from scratch",
    )
)
ARMS.register("small_text")(
    Arm(
        strategy=FROM_SCRATCH[0],
        kind="scratch",
        backbone="small_text",
        inputs=("text",),
        options=FROM_SCRATCH[1],
        description="a small text network (embeddings + 1-D convolution), trained from scratch",
    )
)
ARMS.register("feature_extraction")(
    Arm(
        strategy="feature_extraction",
        kind="transfer",
        description="pretrained backbone frozen, new head trained on stored features",
    )
)
ARMS.register("two_stage")(
    Arm(
        strategy="two_stage",
        kind="transfer",
        options={"top": 2, "lr_factor": 0.1},
        stages=2,
        description="head first on a frozen backbone, then the top 2 groups at lr x 0.1",
    )
)
ARMS.register("progressive")(
    Arm(
        strategy="progressive",
        kind="transfer",
        options={"max_groups": 2, "lr_decay": 0.5},
        stages=3,
        description="head, then one more group per stage (2 groups), lr halved each stage",
    )
)
ARMS.register("auto")(
    Arm(
        strategy="auto",
        kind="transfer",
        description="the advisor's plan: what graft fit --strategy auto trains, the same budget",
    )
)


DEFAULT_ARMS = (
    "scratch",
    "small_cnn",
    "small_text",
    "feature_extraction",
    "two_stage",
    "progressive",
    "auto",
)


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What every arm of a comparison gets.

    Args:
        epochs: epochs per arm, all its stages together (the same for every arm).
        lr: base learning rate (the head's; fine-tuning stages scale it by their factor).
        batch_size: samples per step.
        image_size: input side in pixels for the compared backbone (None: its own).
        small_cnn_size: input side of the small CNN (None: the data's own image size).
        max_length: tokens per text for every text arm (None: each backbone's own).
        arms: the contenders, names in ``ARMS``.
        fractions: training-set fractions of the data-efficiency curve (empty: no curve).
        seeds: random subsets (and training seeds) per fraction.
        curve_arms: arms trained for the curve (empty: every arm).
    """

    epochs: int = 12
    lr: float = 3e-3
    batch_size: int = 64
    image_size: int | None = None
    small_cnn_size: int | None = None
    max_length: int | None = None
    arms: tuple[str, ...] = DEFAULT_ARMS
    fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    seeds: int = 2
    curve_arms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1 for a comparison, got {self.epochs}")
        if not self.arms:
            raise ConfigError("--arms: give at least one arm; known: " + ", ".join(ARMS.names()))
        for name in (*self.arms, *self.curve_arms):
            ARMS.get(name)  # an unknown name lists the known ones
        bad = [f for f in self.fractions if not 0 < f <= 1]
        if bad:
            raise ConfigError(f"--fractions must be in (0, 1], got {', '.join(map(str, bad))}")
        if self.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {self.seeds}")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


#: ``--budget`` presets. ``quick`` fits a laptop CPU in minutes; ``standard`` is the default.
BUDGETS: dict[str, Budget] = {
    "quick": Budget(epochs=4, image_size=64, fractions=(), seeds=1),
    "standard": Budget(),
}


def resolve_budget(budget: str | Budget, **overrides: Any) -> Budget:
    """A preset by name (or a Budget) with the non-None ``overrides`` applied."""
    from dataclasses import replace

    if isinstance(budget, str):
        if budget not in BUDGETS:
            raise ConfigError(f"--budget {budget!r}: known budgets are {', '.join(BUDGETS)}")
        budget = BUDGETS[budget]
    changes = {k: v for k, v in overrides.items() if v is not None}
    for key in ("arms", "fractions", "curve_arms"):
        if key in changes:
            changes[key] = tuple(changes[key])
    return replace(budget, **changes)
