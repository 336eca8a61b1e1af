"""The advisor's decision behind ``--strategy auto``: strategy, depth and rates from measured facts.

The textbook decision matrix (dataset size x similarity to the source; Yosinski et al., "How
transferable are features in deep neural networks?", NeurIPS 2014; the CS231n transfer-learning
notes) with both inputs measured instead of guessed. This module is the pure part: it sees
:class:`Facts`, never data or a backbone.

* :func:`decide`: the matrix, with the negative-transfer guard (features that lose to raw
  pixels in a linear probe never settle on feature extraction; losing by more than the noise,
  it says plainly that training from scratch is likely to win), and the input size the facts
  were measured at, with its reason (:mod:`graft.strategies.input_size`);
* :class:`Auto`: the choice as a registered strategy, and :func:`as_strategy` to make one.

The facts are measured by :func:`graft.measure.advise.measure_facts`; ``graft.fit`` and
``graft.advise`` call it through :mod:`graft.workflows.advise`, since ``Strategy.plan`` does not
see data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from graft.strategies.base import STRATEGIES, Plan, Strategy, create_strategy
from graft.strategies.budget import split_epochs

#: Classification with fewer training samples per class than this is "small".
SMALL_PER_CLASS = 100
#: Regression with fewer training samples than this is "small".
SMALL_REGRESSION = 1000
#: Options per depth of adaptation: 0 = frozen backbone ... 3 = everything, discriminative.
DEPTHS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("feature_extraction", {}, "train a head on the frozen features"),
    ("two_stage", {"top": 2, "lr_factor": 0.1}, "head first, then the top 2 groups at lr x 0.1"),
    (
        "two_stage",
        {"fraction": 0.5, "lr_factor": 0.1, "layer_decay": 0.8},
        "head first, then the top half of the groups at lr x 0.1, x 0.8 per group down",
    ),
    (
        "two_stage",
        {"fraction": 1.0, "lr_factor": 0.1, "layer_decay": 0.7},
        "head first, then every group at lr x 0.1, x 0.7 per group down",
    ),
)
FROM_SCRATCH = ("full", {"lr_factor": 1.0}, "train every layer at the full rate (from scratch)")
#: "Features lose by more than noise": this many standard errors of the paired difference.
SCRATCH_SE = 2.0
GUARD_CHOICE = (
    "two_stage",
    {"fraction": 1.0, "lr_factor": 0.3, "layer_decay": 0.9},
    "head first, then every group at lr x 0.3 (the features need to change)",
)


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the advisor measured (None = not measured, with the reason in a note).

    Args:
        task: the dataset's task.
        n_train: training samples.
        n_outputs: classes (classification) or targets (regression).
        gap: the gap to the source: ``near``, ``moderate`` or ``far``.
        gap_values: its measures (``mmd``, ``proxy_a_distance``, ``coral``; and the proxy
            A-distance's 95% interval ``proxy_a_low``, ``proxy_a_high`` when measured).
        gap_note: what the gap was measured against, or why it was not.
        score_name: the transferability score.
        score: its value on the features.
        pixel_score: its value on raw pixels.
        probe: the linear probe's validation metric on the features.
        pixel_probe: the same probe on raw pixels.
        probe_metric: the probe's metric (``accuracy`` or ``R²``).
        pixel_size: the side of the pixel baseline's images.
        constant_features: the backbone gives every image the same features.
        pretrained: the backbone's weights are pretrained (False: random initialisation).
        source: the data's folder or table (for the commands the advice suggests).
        probe_noise: one standard error of the paired difference between the two probes
            (features minus raw input, on the same validation examples).
        image_size: the input side the features were measured at, which the fit uses.
        native_size: the backbone's own input side.
        data_side: the images' typical side (median short side of a sample).
        size_given: ``image_size`` is the user's (``--image-size``): kept, not searched.
        size_probes: ``(size, probe)`` per candidate size measured (empty: no search).
        size_noise: one standard error of the best candidate's probe (the size rule's noise).
        probe_basis: what the probes were scored on (``on 15 validation examples``,
            ``cross-validated on 100 labelled examples``).
    """

    task: str
    n_train: int
    n_outputs: int
    gap: str | None = None
    gap_values: dict[str, float] | None = None
    gap_note: str = ""
    score_name: str | None = None
    score: float | None = None
    pixel_score: float | None = None
    probe: float | None = None
    pixel_probe: float | None = None
    probe_metric: str = "accuracy"
    pixel_size: int | None = None
    #: the raw-input baseline when it is not pixels (text: ``TF-IDF + logistic regression``).
    raw_input: str | None = None
    constant_features: bool = False
    pretrained: bool = True
    source: str = ""
    probe_noise: float | None = None
    image_size: int | None = None
    native_size: int | None = None
    data_side: int | None = None
    size_given: bool = False
    size_probes: tuple[tuple[int, float], ...] = ()
    size_noise: float | None = None
    #: what the probes were scored on (validation examples, or cross-validated labelled ones).
    probe_basis: str = ""

    @property
    def probes_tie(self) -> bool:
        """The two probes are equal, or within one standard error of their paired difference."""
        if self.probe is None or self.pixel_probe is None:
            return False
        return abs(self.probe - self.pixel_probe) <= (self.probe_noise or 0.0)

    @property
    def features_lose(self) -> bool:
        """The guard: the probe on features is below the raw-input probe beyond one standard
        error of their difference (when measured); a tie goes to the score."""
        if self.probe is None or self.pixel_probe is None:
            return False
        if not self.probes_tie:
            return self.probe < self.pixel_probe
        return self.score is None or self.pixel_score is None or self.score <= self.pixel_score

    @property
    def features_win_clearly(self) -> bool:
        """The features beat the raw input by more than ``SCRATCH_SE`` standard errors: they
        already suit the task, so an unmeasured gap is read as near."""
        if self.probe is None or self.pixel_probe is None or self.probe_noise is None:
            return False
        return self.probe - self.pixel_probe > SCRATCH_SE * self.probe_noise

    @property
    def scratch_likely(self) -> bool:
        """The guard fires strongly: the raw input beats the features by more than the noise
        (``SCRATCH_SE`` standard errors of the paired difference): training from scratch is
        likely to win."""
        if self.probe is None or self.pixel_probe is None or self.probe_noise is None:
            return False
        return self.pixel_probe - self.probe > SCRATCH_SE * self.probe_noise

    @property
    def scratch_contender(self) -> bool:
        """A network trained from scratch may well win: the backbone is pretrained, both probes
        were measured and the features do not beat the raw input beyond noise
        (``SCRATCH_SE`` standard errors of the paired difference)."""
        measured = self.probe is not None and self.pixel_probe is not None
        return self.pretrained and measured and not self.features_win_clearly

    @property
    def small(self) -> bool:
        if self.task == "classification":
            return self.n_train / max(self.n_outputs, 1) < SMALL_PER_CLASS
        return self.n_train < SMALL_REGRESSION


@dataclass(frozen=True, kw_only=True)
class Advice:
    """The advisor's choice, its reasons (a few printable lines) and the facts behind it."""

    strategy: str
    options: dict[str, Any]
    reasons: tuple[str, ...]
    facts: Facts
    guard: bool
    seconds: float = 0.0

    def summary(self) -> str:
        return self.reasons[-1]

    @property
    def image_size(self) -> int | None:
        """The input side the fit trains at (the user's, the chosen one, or the native one)."""
        return self.facts.image_size

    @property
    def scratch_likely(self) -> bool:
        """Training from scratch is likely to beat this backbone (see :attr:`Facts.scratch_likely`)."""
        return self.facts.scratch_likely

    def lines(self) -> list[str]:
        return [f"advice: {self.strategy} {_fmt(self.options)}", *(f"  {r}" for r in self.reasons)]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lines": self.lines()}


def _fmt(options: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else ""


def decide(facts: Facts) -> Advice:
    """The decision matrix on measured facts (pure: no data, no backbone)."""
    f, reasons = facts, _fact_lines(facts)
    if not f.pretrained:
        name, options, how = FROM_SCRATCH
        reasons.append(f"→ a randomly initialised backbone has nothing to transfer: {how}")
        return Advice(
            strategy=name, options=dict(options), reasons=tuple(reasons), facts=f, guard=False
        )
    if f.features_lose or f.constant_features:
        name, options, how = GUARD_CHOICE
        raw = f.raw_input or "raw pixels"
        why = "constant features" if f.constant_features else f"features lose to {raw}"
        if f.scratch_likely:
            reasons.append(_scratch_line(f))
        reasons.append(
            f"→ negative-transfer guard ({why}): not settling on feature extraction; {how}. "
            "Also try another backbone (graft rank) or training from scratch."
        )
        options = _batchnorm(f, name, dict(options), reasons)
        return Advice(strategy=name, options=options, reasons=tuple(reasons), facts=f, guard=True)
    inferred = f.gap is None and f.features_win_clearly
    gap = f.gap or ("near" if inferred else "moderate")
    weak = f.score is not None and f.pixel_score is not None and f.score < f.pixel_score
    depth = {"near": 0, "moderate": 1, "far": 2}[gap] + int(weak) + int(not f.small)
    name, options, how = DEPTHS[min(depth, len(DEPTHS) - 1)]
    if f.gap:
        said = ""
    elif inferred:
        raw = f.raw_input or _pixels(f.pixel_size)
        said = f" (inferred: the frozen features beat {raw} beyond noise)"
    else:
        said = " (assumed)"
    parts = ["small data" if f.small else "enough data to fine-tune", f"a {gap} gap{said}"]
    if weak:
        parts.append(f"a {f.score_name} below the pixels'")
    reasons.append(f"→ {' and '.join(parts)}: {how}")
    options = _batchnorm(f, name, dict(options), reasons)
    return Advice(strategy=name, options=options, reasons=tuple(reasons), facts=f, guard=False)


def _scratch_line(f: Facts) -> str:
    """Plainly: the raw input beats the features beyond noise, and the commands to try."""
    raw = f.raw_input or _pixels(f.pixel_size)
    gap = (f.pixel_probe or 0.0) - (f.probe or 0.0)
    points = f.probe_metric == "accuracy"
    amount = f"{100 * gap:.1f} points" if points else f"{gap:.3f}"
    noise = f"{100 * (f.probe_noise or 0.0):.1f} points" if points else f"{f.probe_noise:.3f}"
    data = f.source or "DATA"
    scratch = (
        f"`graft fit {data} --backbone small_cnn --no-pretrained`, or " if not f.raw_input else ""
    )
    return (
        f"training from scratch is likely to win here: {raw} beat the features by {amount} "
        f"of {f.probe_metric}, more than {SCRATCH_SE:g} standard errors ({noise} each) of "
        f"the difference; try {scratch}`graft compare {data}` to measure both"
    )


def _batchnorm(f: Facts, name: str, options: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """Small data that fine-tunes the backbone keeps every BatchNorm in inference mode.

    A few small batches of a new domain overwrite the pretrained statistics; measured on
    digits with EfficientNet-Lite0 (210 images, every group fine-tuned): test accuracy 0.47
    with statistics moving, 0.84 with them fixed (Keras gives the same advice).
    """
    if not f.small or name == "feature_extraction":
        return options
    reasons[-1] = (
        reasons[-1].rstrip(".")
        + "; BatchNorm statistics stay fixed (bn=eval): too little data to re-estimate them"
    )
    return {**options, "bn": "eval"}


def _fact_lines(f: Facts) -> list[str]:
    unit = (
        f"{f.n_outputs} classes, {f.n_train / max(f.n_outputs, 1):.0f} per class"
        if f.task == "classification"
        else f"{f.n_outputs} targets"
    )
    lines = [f"data: {f.n_train} training samples ({unit}): {'small' if f.small else 'large'}"]
    size = size_line(f)
    if size:
        lines.append(size)
    if f.gap is not None and f.gap_values:
        v = f.gap_values
        lines.append(
            f"gap to the source: {f.gap} (proxy A-distance {v['proxy_a_distance']:.2f}"
            + (f" [{v['proxy_a_low']:.2f}, {v['proxy_a_high']:.2f}]" if "proxy_a_low" in v else "")
            + ", "
            f"MMD² {v['mmd']:.3f}) against {f.gap_note}"
        )
    else:
        lines.append(f"gap to the source: not measured ({f.gap_note})")
    if f.score is not None:
        pix = f" vs {f.pixel_score:.4g} on raw pixels" if f.pixel_score is not None else ""
        lines.append(f"transferability: {f.score_name} {f.score:.4g} on the features{pix}")
    if f.probe is not None and f.pixel_probe is not None:
        verdict = "FEATURES LOSE" if f.features_lose else "features win"
        if f.probes_tie:
            within = "a tie" if f.probe == f.pixel_probe else "within noise"
            verdict = f"{within}, broken by {f.score_name}: {verdict.lower()}"
        basis = f" ({f.probe_basis})" if f.probe_basis else ""
        lines.append(
            f"guard: linear probe {f.probe_metric}{basis} {f.probe:.3f} on the features vs "
            f"{f.pixel_probe:.3f} on {f.raw_input or _pixels(f.pixel_size)}: {verdict}"
        )
    return lines


def size_line(f: Facts) -> str:
    """The input size and why: the user's, the native one, or the smallest within noise."""
    if f.image_size is None:
        return ""
    images = f"images are {f.data_side} px" if f.data_side else "images of unknown size"
    if f.size_given:
        return f"input size {f.image_size} px: yours (--image-size), kept ({images})"
    if not f.size_probes:
        if f.native_size is None or f.image_size != f.native_size or f.data_side is None:
            return f"input size {f.image_size} px ({images})"
        return f"input size {f.image_size} px: the backbone's native size ({images})"
    cells = ", ".join(f"{p:.3f} at {s}" for s, p in f.size_probes)
    best = max(f.size_probes, key=lambda sp: sp[1])[0]
    noise = f"{f.size_noise:.3f}" if f.size_noise is not None else "?"
    if f.image_size != best:
        rule = f"the smallest within noise of the best ({best} px; one standard error {noise})"
    elif f.image_size != min(s for s, _ in f.size_probes):
        rule = f"the best; the smaller sizes fall beyond one standard error ({noise})"
    else:
        rule = "the best"
    return (
        f"input size {f.image_size} px: {images}, the backbone's native {f.native_size}; "
        f"linear probe {f.probe_metric} {cells} px: {f.image_size} px is {rule}"
    )


def _pixels(size: int | None) -> str:
    return f"{size}x{size} pixels" if size else "raw pixels"


@STRATEGIES.register("auto")
@dataclass(frozen=True, kw_only=True)
class Auto(Strategy):
    """The advisor's choice as a strategy: ``graft.fit`` measures the data and fills it in.

    Without measured data (a plan made from layer groups alone) it plans the two-stage default
    and says so in the plan's notes.

    Args:
        choice: the strategy chosen.
        choice_options: its options, as ``(name, value)`` pairs.
        reasons: why, one line each.
        total_epochs: a total budget split among the chosen plan's stages (the rule of
            :func:`graft.strategies.budget.split_epochs`, which ``graft compare`` gives every
            arm); None: ``epochs`` per stage, as every strategy counts them.
    """

    choice: str = "two_stage"
    choice_options: tuple[tuple[str, Any], ...] = ()
    reasons: tuple[str, ...] = ("auto: nothing measured (no data seen); the two-stage default",)
    total_epochs: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.total_epochs is not None and self.total_epochs < 1:
            raise ValueError(f"total_epochs must be >= 1, got {self.total_epochs}")

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        options = dict(self.choice_options)
        if self.total_epochs is not None:
            stages = len(
                create_strategy(self.choice, **options).plan(groups, epochs=1, lr=lr).stages
            )
            epochs, options = split_epochs(self.choice, options, self.total_epochs, stages=stages)
        plan = create_strategy(self.choice, **options).plan(groups, epochs=epochs, lr=lr)
        return replace(plan, notes=(*plan.notes, f"chosen by --strategy auto: {self.reasons[-1]}"))


def as_strategy(
    advice: Advice, user_options: dict[str, Any] | None, log: Callable[[str], None]
) -> Auto:
    """The advice as an :class:`Auto` strategy; options the user gave override the advisor's.

    ``total_epochs`` is Auto's own option (a budget split among the chosen plan's stages).
    """
    user = {k: v for k, v in (user_options or {}).items() if v is not None}
    total = user.pop("total_epochs", None)
    valid = {f.name for f in fields(STRATEGIES.get(advice.strategy))}
    merged = {**advice.options, **user}
    dropped = sorted(set(merged) - valid)
    if dropped:
        log(f"  ignored {', '.join(dropped)}: {advice.strategy} has no such option")
    if "top" in merged and "fraction" in merged:  # the user's depth wins over the advisor's
        merged.pop("fraction" if "top" in user else "top")
    chosen = tuple(sorted((k, v) for k, v in merged.items() if k in valid))
    return Auto(
        choice=advice.strategy, choice_options=chosen, reasons=advice.reasons, total_epochs=total
    )
