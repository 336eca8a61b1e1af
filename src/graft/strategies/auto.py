"""The advisor behind ``--strategy auto``: measure the data, then choose strategy, depth and rates.

The textbook decision matrix (dataset size x similarity to the source; Yosinski et al., "How
transferable are features in deep neural networks?", NeurIPS 2014; the CS231n transfer-learning
notes) with both inputs measured instead of guessed, on stored features:

* size: training samples per class (classification) or in all (regression);
* gap to the source: :func:`graft.measure.gap.domain_gap` against the reference sample kept with each
  bundled backbone (:func:`graft.workflows.measure.reference_features`);
* transferability: a registered score (LogME by default) on the features, compared with the
  same score on raw downsampled pixels (both on the same targets, so comparable);
* a negative-transfer guard: a linear probe on the pretrained features against the same probe
  on raw pixels (Kornblith et al., "Do Better ImageNet Models Transfer Better?", CVPR 2019, use
  the linear probe as the cheap proxy of transfer). When the features lose, the advisor does not
  settle on feature extraction and says so.

:func:`decide` is a pure function of the measured :class:`Facts`; :func:`resolve_auto` is the
hook ``graft.fit`` calls, since ``Strategy.plan`` does not see data.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.config import DEFAULT_BACKBONE, SPLIT_FRACTION
from graft.errors import ConfigError, DataError
from graft.strategies.base import STRATEGIES, Plan, Strategy, create_strategy

if TYPE_CHECKING:
    from graft.backbones.base import Backbone
    from graft.data.base import Dataset
    from graft.model import GraftModel

#: Classification with fewer training samples per class than this is "small".
SMALL_PER_CLASS = 100
#: Regression with fewer training samples than this is "small".
SMALL_REGRESSION = 1000
#: Pixel baseline: images downsampled to this square size (RGB).
PIXEL_SIZE = 16
#: The guard's probes see at most this many training (and half as many validation) samples.
GUARD_MAX = 2000
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
GUARD_CHOICE = (
    "two_stage",
    {"fraction": 1.0, "lr_factor": 0.3, "layer_decay": 0.9},
    "head first, then every group at lr x 0.3 (the features need to change)",
)


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the advisor measured (None = not measured, with the reason in a note)."""

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
    constant_features: bool = False
    pretrained: bool = True

    @property
    def features_lose(self) -> bool:
        """The guard: the probe on features is below the pixel probe (a tie goes to the score)."""
        if self.probe is None or self.pixel_probe is None:
            return False
        if self.probe != self.pixel_probe:
            return self.probe < self.pixel_probe
        return self.score is None or self.pixel_score is None or self.score <= self.pixel_score

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
        why = "constant features" if f.constant_features else "features lose to raw pixels"
        reasons.append(
            f"→ negative-transfer guard ({why}): not settling on feature extraction; {how}. "
            "Also try another backbone (graft rank) or training from scratch."
        )
        options = _batchnorm(f, name, dict(options), reasons)
        return Advice(strategy=name, options=options, reasons=tuple(reasons), facts=f, guard=True)
    gap = f.gap or "moderate"
    weak = f.score is not None and f.pixel_score is not None and f.score < f.pixel_score
    depth = {"near": 0, "moderate": 1, "far": 2}[gap] + int(weak) + int(not f.small)
    name, options, how = DEPTHS[min(depth, len(DEPTHS) - 1)]
    parts = [
        "small data" if f.small else "enough data to fine-tune",
        f"a {gap} gap" + ("" if f.gap else " (assumed)"),
    ]
    if weak:
        parts.append(f"a {f.score_name} below the pixels'")
    reasons.append(f"→ {' and '.join(parts)}: {how}")
    options = _batchnorm(f, name, dict(options), reasons)
    return Advice(strategy=name, options=options, reasons=tuple(reasons), facts=f, guard=False)


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
    if f.gap is not None and f.gap_values:
        v = f.gap_values
        lines.append(
            f"gap to the source: {f.gap} (proxy A-distance {v['proxy_a_distance']:.2f}, "
            f"MMD² {v['mmd']:.3f}) against {f.gap_note}"
        )
    else:
        lines.append(f"gap to the source: not measured ({f.gap_note})")
    if f.score is not None:
        pix = f" vs {f.pixel_score:.4g} on raw pixels" if f.pixel_score is not None else ""
        lines.append(f"transferability: {f.score_name} {f.score:.4g} on the features{pix}")
    if f.probe is not None and f.pixel_probe is not None:
        verdict = "FEATURES LOSE" if f.features_lose else "features win"
        if f.probe == f.pixel_probe:
            verdict = f"a tie, broken by {f.score_name}: {verdict.lower()}"
        lines.append(
            f"guard: linear probe val {f.probe_metric} {f.probe:.3f} on the features vs "
            f"{f.pixel_probe:.3f} on {PIXEL_SIZE}x{PIXEL_SIZE} pixels: {verdict}"
        )
    return lines


# ------------------------------------------------------------------------ measuring
def pixel_features(paths: Sequence[Path], size: int = PIXEL_SIZE) -> np.ndarray:
    """Raw images downsampled to ``size x size`` RGB in [0, 1]: the guard's baseline inputs."""
    from PIL import Image

    from graft.data.transforms import load_image

    out = np.empty((len(paths), size * size * 3), dtype=np.float32)
    for i, p in enumerate(paths):
        im = load_image(p, 3).resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(im, dtype=np.float32).reshape(-1) / 255.0
    return out


def linear_probe(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], task: str
) -> float:
    """Validation accuracy (classification) or R² (regression) of a linear model."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = (
        LogisticRegression(max_iter=300)
        if task == "classification"
        else RidgeCV(alphas=np.logspace(-3, 3, 7))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), model).fit(*train)
        return float(pipe.score(*val))


def measure_facts(
    backbone: Backbone, data: Dataset, cfg: Any, *, score: str = "logme", seed: int = 0
) -> Facts:
    """Measure size, gap to the source, transferability and the guard on stored features."""
    from graft.workflows import measure

    feats = measure.split_features(backbone, data, cfg)
    x_train = feats.features["train"]
    base: dict[str, Any] = {"task": data.task, "n_train": len(data.train)}
    base["n_outputs"] = data.num_outputs
    base["pretrained"] = bool(backbone.spec.pretrained)
    if float(x_train.std(axis=0).max()) <= 1e-6:
        note = f"the features are constant at {backbone.data_config.image_size} px; try a larger --image-size"
        return Facts(**base, gap_note=note, constant_features=True)
    gap, note = measure.gap_to_source(backbone, x_train, seed=seed)
    facts = Facts(
        **base,
        gap=gap.level if gap else None,
        gap_values={"mmd": gap.mmd, "proxy_a_distance": gap.proxy_a_distance, "coral": gap.coral}
        if gap
        else None,
        gap_note=note,
    )
    if data.task not in ("classification", "regression") or "val" not in feats.features:
        return facts
    return replace(facts, **_score_and_guard(backbone, data, feats, score, seed))


def _score_and_guard(
    backbone: Backbone, data: Dataset, feats: Any, score: str, seed: int
) -> dict[str, Any]:
    from graft.measure.scores import SCORES
    from graft.measure.scores import score as compute
    from graft.workflows import measure

    rng = np.random.default_rng(seed)
    picks = {}
    for split, cap in (("train", GUARD_MAX), ("val", GUARD_MAX // 2)):
        n = len(feats.features[split])
        picks[split] = np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)
    splits = data.splits()
    pix = {s: pixel_features([splits[s].paths[i] for i in idx]) for s, idx in picks.items()}
    y = {s: np.asarray(feats.targets[s])[idx] for s, idx in picks.items()}
    x = {s: feats.features[s][idx] for s, idx in picks.items()}
    out: dict[str, Any] = {"probe_metric": "accuracy" if data.task == "classification" else "R²"}
    try:
        out["probe"] = linear_probe((x["train"], y["train"]), (x["val"], y["val"]), data.task)
        out["pixel_probe"] = linear_probe(
            (pix["train"], y["train"]), (pix["val"], y["val"]), data.task
        )
    except ValueError:  # e.g. a single class in the training split: no probe to fit
        pass
    try:
        fx, fy = feats.joined()
        out.update(
            score_name=score, score=measure.measure_score(score, backbone, fx, fy, data.task)
        )
        if SCORES.get(score).needs == "features":
            all_pix, all_y = np.concatenate(list(pix.values())), np.concatenate(list(y.values()))
            out["pixel_score"] = compute(score, targets=all_y, task=data.task, features=all_pix)
    except (ConfigError, DataError):
        pass
    return out


# ------------------------------------------------------------------------ the strategy
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
    """

    choice: str = "two_stage"
    choice_options: tuple[tuple[str, Any], ...] = ()
    reasons: tuple[str, ...] = ("auto: nothing measured (no data seen); the two-stage default",)

    def plan(self, groups: Sequence[str], *, epochs: int, lr: float) -> Plan:
        inner = create_strategy(self.choice, **dict(self.choice_options))
        plan = inner.plan(groups, epochs=epochs, lr=lr)
        return replace(plan, notes=(*plan.notes, f"chosen by --strategy auto: {self.reasons[-1]}"))


def as_strategy(
    advice: Advice, user_options: dict[str, Any] | None, log: Callable[[str], None]
) -> Auto:
    """The advice as an :class:`Auto` strategy; options the user gave override the advisor's."""
    valid = {f.name for f in fields(STRATEGIES.get(advice.strategy))}
    merged = {**advice.options, **{k: v for k, v in (user_options or {}).items() if v is not None}}
    dropped = sorted(set(merged) - valid)
    if dropped:
        log(f"  ignored {', '.join(dropped)}: {advice.strategy} has no such option")
    if "top" in merged and "fraction" in merged:  # the user's depth wins over the advisor's
        merged.pop("fraction" if "top" in (user_options or {}) else "top")
    chosen = tuple(sorted((k, v) for k, v in merged.items() if k in valid))
    return Auto(choice=advice.strategy, choice_options=chosen, reasons=advice.reasons)


def resolve_auto(
    model: GraftModel,
    data: Dataset,
    cfg: Any,
    *,
    options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    seed: int = 0,
) -> Auto:
    """``graft.fit``'s hook for ``strategy="auto"``: measure, log the reasoning, record it.

    The reasoning goes to ``model.info["advice"]`` (saved with the model artifact).
    """
    started = time.perf_counter()
    advice = decide(measure_facts(model.backbone, data, cfg, seed=seed))
    advice = replace(advice, seconds=round(time.perf_counter() - started, 2))
    for line in advice.lines():
        log(line)
    model.info["advice"] = advice.to_dict()
    return as_strategy(advice, options, log)


def advise(
    data: str | Path | Dataset,
    *,
    task: str | None = None,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    pretrained: bool = True,
    image_size: int | None = None,
    score: str = "logme",
    val_fraction: float = SPLIT_FRACTION,
    test_fraction: float = SPLIT_FRACTION,
    cache_dir: str | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> Advice:
    """What ``graft fit --strategy auto`` would choose for ``data``, without training.

    Args:
        data: an image folder or table, or a loaded Dataset.
        task: ``classification`` or ``regression`` (inferred when None).
        backbone: bundled name, ``timm:<name>``, or a Backbone.
        weights: a local weights file for the backbone.
        pretrained: False measures a randomly initialised backbone.
        image_size: input size override.
        score: the transferability score (a registered name).
        val_fraction: validation share when no val split is given (as in fit).
        test_fraction: test share when no test split is given (as in fit).
        cache_dir: feature store folder (the one ``graft fit --cache-dir`` reads).
        batch_size: images per backbone forward.
        seed: data split and random initialisation seed (as in fit).
        progress: progress bars.

    Example:
        >>> print("\\n".join(graft.advise("photos/").lines()))  # doctest: +SKIP
    """
    import torch

    from graft.backbones import create as make_backbone
    from graft.data import load as load_data
    from graft.workflows.measure import store_config

    started = time.perf_counter()
    dataset = load_data(
        data, task=task, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    torch.manual_seed(seed)
    bb = make_backbone(backbone, weights=weights, pretrained=pretrained, image_size=image_size)
    cfg = store_config(cache_dir, batch_size, 0, progress)
    advice = decide(measure_facts(bb, dataset, cfg, score=score, seed=seed))
    return replace(advice, seconds=round(time.perf_counter() - started, 2))
