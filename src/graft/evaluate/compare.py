"""``graft compare``: is transfer learning helping here? Baselines, transfer arms, one verdict.

Every arm (see :mod:`graft.evaluate.arms`) trains through :func:`graft.fit` on the same
:class:`~graft.data.Dataset` object (identical splits), with the same seed and budget, and a
shared feature cache (frozen stages of different arms reuse one backbone pass). The result is
a table (test metrics, training time, epochs to best, trainable parameters), a plain verdict,
optionally data-efficiency curves, and an HTML report. The printed table and the report's are
built from the same rows by the same function.

Example::

    result = graft.compare("digits/", budget="quick", report="compare.html")
    print(result.table())
    print(result.verdict)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.config import DEFAULT_BACKBONE, FitConfig
from graft.data.images import small_network_side
from graft.errors import ConfigError
from graft.evaluate.arms import ARMS, Arm, Budget, resolve_budget
from graft.evaluate.calibration import calibrate, calibration_text
from graft.evaluate.noise import (
    PER_EXAMPLE,
    Interval,
    bootstrap_interval,
    clears_noise,
    paired_difference,
)
from graft.evaluate.raw import RAW_BASELINES, raw_baseline
from graft.metrics import format_value, metric_direction

if TYPE_CHECKING:
    from graft.backbones.base import Backbone
    from graft.data.base import Dataset
    from graft.model import GraftModel

#: Metrics shown per task, the first decides the verdict.
TABLE_METRICS = {
    "classification": ("accuracy", "macro_f1"),
    "regression": ("rmse", "r2"),
    "multilabel": ("micro_f1", "macro_f1"),
}
#: Metrics on a 0..1 scale, whose differences read as percentage points.
_FRACTIONS = {"accuracy", "balanced_accuracy", "macro_f1", "micro_f1", "subset_accuracy"}


@dataclass
class Comparison:
    """The outcome of :func:`compare`: rows, verdict, models, curves and the data they share."""

    rows: list[dict[str, Any]]
    verdict: str
    recommended: str
    metric: str
    budget: Budget
    dataset: Dataset
    models: dict[str, GraftModel]
    curve_runs: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, float] | None = None
    seconds: float = 0.0
    backbone: str = ""
    calibration: dict[str, float] | None = None
    per_example: dict[str, np.ndarray] | None = field(default=None, repr=False)
    baseline: dict[str, Any] | None = None  # the raw-input baseline's row (no network)
    skipped: dict[str, str] = field(default_factory=dict)  # arm -> why it did not run here

    def table_rows(self) -> list[dict[str, str]]:
        """The rows as printed (arms, then the raw-input baseline): formatted once, for both."""
        return table_rows(self.rows + ([self.baseline] if self.baseline else []))

    def table(self) -> str:
        return format_table(self.table_rows())

    def calibration_line(self) -> str:
        """The recommended arm's calibration in one line ('' when not measured)."""
        if self.calibration is None:
            return ""
        return calibration_text(self.recommended, self.calibration)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "baseline": self.baseline,
            "verdict": self.verdict,
            "recommended": self.recommended,
            "metric": self.metric,
            "budget": self.budget.to_dict(),
            "curve_runs": self.curve_runs,
            "importance": self.importance,
            "seconds": self.seconds,
            "calibration": self.calibration,
            "skipped": self.skipped,
        }


def compare(
    data: str | Path | Dataset,
    *,
    task: str | None = None,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    budget: str | Budget = "standard",
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    image_size: int | None = None,
    small_cnn_size: int | None = None,
    max_length: int | None = None,
    arms: list[str] | None = None,
    fractions: list[float] | None = None,
    seeds: int | None = None,
    curve_arms: list[str] | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
    report: str | Path | None = None,
    fitted: Mapping[str, GraftModel] | None = None,
    importance: bool = True,
    baseline: bool | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
    **data_options: Any,
) -> Comparison:
    """Train from-scratch baselines and transfer arms on the same splits; compare them.

    Args:
        data: an image or text folder or table (texts: pass ``text_column`` for a table), or a
            loaded Dataset (its splits are used as they are).
        task: ``classification`` or ``regression`` (inferred when None).
        backbone: the pretrained backbone compared (also the architecture of ``scratch``).
        weights: local weights file for a timm architecture.
        budget: a preset (``quick``, ``standard``) or a Budget; the options below override it.
        epochs: epochs per arm, all its stages together.
        lr: base learning rate.
        batch_size: samples per step.
        image_size: input size of the compared backbone.
        small_cnn_size: input size of the small CNN (default: the data's own image size).
        max_length: texts: tokens per text for every arm (default: each backbone's own).
        arms: contenders (default: scratch, small_cnn on images or small_text on texts,
            feature_extraction, two_stage, progressive, auto: the advisor's plan); an arm that
            does not read the data's input kind is skipped, and the log and the report say why.
        fractions: training-set fractions for the data-efficiency curve (e.g. 0.1,0.25,0.5,1).
        seeds: subsets and training seeds per fraction.
        curve_arms: arms trained for the curve (default: every arm).
        seed: seed of the splits and of every fit.
        cache_dir: feature store shared by the arms.
        report: write the HTML report there.
        fitted: arms already trained on this very Dataset object (name -> model), reused when
            trained as the arm would be (:data:`REUSED_AS`; ``auto`` as given), else trained
            anew, and the log says why.
        importance: measure layer-group importance for the report.
        baseline: also score the raw-input baseline, a linear model with no network (on
            downsampled pixels for images, on TF-IDF for texts), a row of the table and a
            contender of the verdict (None: when ``arms`` is not given).
        progress: progress bars.
        log: where progress lines go.
        **data_options: passed to :func:`graft.data.load` (``label_column``, ...).
    """
    from graft.data import load as load_data

    started = time.perf_counter()
    plan = resolve_budget(
        budget, epochs=epochs, lr=lr, batch_size=batch_size, image_size=image_size,
        small_cnn_size=small_cnn_size, max_length=max_length, arms=arms,
        fractions=fractions, seeds=seeds, curve_arms=curve_arms,
    )  # fmt: skip
    dataset = load_data(data, task=task, seed=seed, **data_options)
    if dataset.task not in TABLE_METRICS:
        raise ConfigError(
            f"graft compare: {dataset.source} is a {dataset.task} dataset; comparisons support "
            f"{', '.join(TABLE_METRICS)} (compare one task at a time with --task)"
        )
    skipped = skipped_arms(plan.arms, dataset.input_kind)
    for name, why in skipped.items():
        log(f"arm {name}: skipped, {why}")
    names = [n for n in plan.arms if n not in skipped]
    if not names:
        raise ConfigError(f"--arms: none of {', '.join(plan.arms)} reads {dataset.input_kind}s")
    runner = _ArmRunner(dataset, backbone, weights, plan, seed, cache_dir, progress)
    models = {}
    for name, model in (fitted or {}).items():
        differs = [] if name == "auto" or name not in names else runner.differences(name, model)
        if differs:
            log(
                f"arm {name}: the model given was trained otherwise ({'; '.join(differs)}): trained anew"
            )
        else:
            models[name] = model
    for name in names:
        if name not in models:
            log(f"arm {name}: {ARMS.get(name).description}")
            models[name] = runner.fit(name, dataset, seed)
    metric = TABLE_METRICS[dataset.task][0]
    rows = [arm_row(name, ARMS.get(name), models[name], dataset.task) for name in names]
    per_example = test_values(models, dataset, metric)
    wanted = baseline or (baseline is None and arms is None)
    raw = _raw_contender(dataset, metric, per_example, log) if wanted else None
    contenders = rows + ([raw] if raw else [])
    add_intervals(contenders, per_example, metric)
    rows, raw = contenders[: len(rows)], (contenders[-1] if raw else None)
    verdict, best = make_verdict(contenders, metric, per_example)
    result = Comparison(
        rows, verdict, best, metric, plan, dataset, models, backbone=_name(backbone)
    )
    result.baseline, result.skipped = raw, skipped
    if plan.fractions:
        from graft.evaluate.efficiency import efficiency_runs

        curve = [n for n in plan.curve_arms or plan.arms if n not in skipped]
        result.curve_runs = efficiency_runs(
            dataset, curve, plan.fractions, plan.seeds, runner.fit,
            metric=metric, done=models, log=log,
        )  # fmt: skip
    if importance:
        result.importance = _importance(models, dataset)
    if best in models:  # a raw-input baseline has no network to calibrate
        result.calibration = calibrate(models[best], dataset)
    result.per_example = per_example
    result.seconds = round(time.perf_counter() - started, 1)
    if report is not None:
        from graft.evaluate.run_report import write_compare_report

        write_compare_report(result, report)
    return result


def _raw_contender(
    dataset: Dataset,
    metric: str,
    per_example: dict[str, np.ndarray] | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The raw-input baseline's row; its per-example test values join ``per_example``."""
    base = RAW_BASELINES[dataset.input_kind]
    log(f"baseline {base.name}: {base.description}")
    fitted = raw_baseline(dataset)
    if per_example is not None and dataset.test is not None and "test" in fitted["outputs"]:
        value = PER_EXAMPLE[metric][0]
        per_example[base.name] = value(dataset.test.targets, fitted["outputs"]["test"])
    return raw_row(base.name, fitted, dataset.task)


#: What a model given to :func:`compare` (``fitted``) must share with the arm it stands in for,
#: as (section, field) of its recorded configuration: the network, its input, the plan, the
#: budget, the rate, the batch and the seed. ``auto`` is taken as given (its plan is the
#: advisor's choice, and its race may return another network).
REUSED_AS = (
    ("model", "backbone"),
    ("model", "pretrained"),
    ("model", "image_size"),
    ("tuning", "strategy"),
    ("tuning", "epochs"),
    ("tuning", "lr"),
    ("tuning", "lr_factor"),
    ("training", "batch_size"),
    ("training", "seed"),
)


class _ArmRunner:
    """Fits arms with everything they share: budget, seed, backbone, cache."""

    def __init__(
        self,
        dataset: Dataset,
        backbone: str | Backbone,
        weights: str | Path | None,
        budget: Budget,
        seed: int,
        cache_dir: str | None,
        progress: bool,
    ) -> None:
        self.backbone, self.weights, self.budget = backbone, weights, budget
        self.seed, self.cache_dir, self.progress = seed, cache_dir, progress
        self.text = dataset.input_kind == "text"
        self.small_size = (
            None if self.text else budget.small_cnn_size or small_network_side(dataset.train.paths)
        )

    def fit(self, name: str, data: Dataset, seed: int) -> GraftModel:
        from graft.workflows.fit import fit

        return fit(data, log=_quiet, **self.options(name, seed))

    def options(self, name: str, seed: int, *, build: bool = True) -> dict[str, Any]:
        """The :func:`graft.fit` options arm ``name`` trains with (``seed``: its offset); with
        ``build`` off, a Backbone object is named, not copied (to compare, not to train)."""
        arm = ARMS.get(name)
        epochs, options = arm.fit_options(self.budget.epochs)
        bb, pretrained, weights, size = self._backbone(arm, build=build)
        length: dict[str, Any] = {"max_length": self.budget.max_length} if self.text else {}
        return dict(
            backbone=bb, pretrained=pretrained, weights=weights, image_size=size,
            strategy=arm.strategy, strategy_options=options, epochs=epochs,
            lr=self.budget.lr, batch_size=self.budget.batch_size, seed=self.seed + seed,
            cache_dir=self.cache_dir, progress=self.progress, **length,
        )  # fmt: skip

    def differences(self, name: str, model: GraftModel) -> list[str]:
        """How ``model`` was trained otherwise than arm ``name`` would be (:data:`REUSED_AS`);
        empty when it could stand in for the arm."""
        options = self.options(name, 0, build=False)
        expected = FitConfig().with_overrides(**options).to_dict()
        given = model.record.config or {}
        out = []
        for section, key in REUSED_AS:
            want = expected.get(section, {}).get(key)
            got = (given.get(section) or {}).get(key)
            if want != got:
                out.append(f"{key} {got!r}, the arm's {want!r}")
        return out

    def _backbone(self, arm: Arm, *, build: bool = True) -> tuple[Any, bool, Any, int | None]:
        """(backbone, pretrained, weights, image_size) for one arm's fit; without ``build`` a
        Backbone object is given by its name."""
        size = self.budget.image_size
        if arm.backbone is not None:
            return arm.backbone, False, None, self.small_size
        if isinstance(self.backbone, str) or not build:
            weights = self.weights if arm.pretrained else None
            return _name(self.backbone), arm.pretrained, weights, size
        # A Backbone object: every arm gets its own copy (fine-tuning changes weights in place).
        if arm.pretrained:
            return copy.deepcopy(self.backbone), True, None, size
        return _random_copy(self.backbone, self.seed), False, None, size


def skipped_arms(names: tuple[str, ...] | list[str], input_kind: str) -> dict[str, str]:
    """Arms among ``names`` that do not read ``input_kind`` data, with the reason."""
    reasons = {n: ARMS.get(n).skip_reason(input_kind) for n in names}
    return {n: why for n, why in reasons.items() if why is not None}


def _random_copy(backbone: Backbone, seed: int) -> Backbone:
    import torch

    from graft.backbones import from_spec

    torch.manual_seed(seed)
    fresh = from_spec(backbone.spec, load_weights=False)
    fresh.data_config = backbone.data_config
    if hasattr(backbone, "tokenizer"):  # a text encoder: the same tokenizer, fresh weights
        fresh.tokenizer = backbone.tokenizer
    return fresh


def _quiet(message: str) -> None:
    del message


def _name(backbone: Any) -> str:
    return backbone if isinstance(backbone, str) else str(backbone.spec.name)


def arm_row(name: str, arm: Arm, model: GraftModel, task: str) -> dict[str, Any]:
    """One row of the table from a fitted model's recorded info (the stored numbers)."""
    from graft.strategies.base import Plan
    from graft.training.params import trainable_counts

    record = model.record
    metrics = record.metrics
    split = "test" if "test" in metrics else "val"
    history = record.history
    epochs, best = 0, []  # a linear start (epoch 0) is no epoch: best there counts 0
    for r in history:
        epochs += r.get("kind") != "linear_start"
        if r.get("best"):
            best.append(epochs)
    trainable = max(trainable_counts(model, Plan.from_dict(record.plan or {})))
    # auto's race may return the small network trained from scratch: then its row is scratch.
    race = (model.info.get("advice") or {}).get("race") or {}
    scratch = not arm.pretrained or race.get("kept") == "scratch"
    row: dict[str, Any] = {"arm": name, "kind": "scratch" if scratch else "transfer"}
    for m in TABLE_METRICS.get(task, ()):
        row[f"{split} {m}"] = metrics.get(split, {}).get(m)
    if split != "val":  # the arm is chosen on validation, never on the split it reports
        row[f"val {TABLE_METRICS[task][0]}"] = metrics.get("val", {}).get(TABLE_METRICS[task][0])
    seconds = record.seconds or 0.0
    if name == race.get("network") and race.get("scratch_seconds") is not None:
        seconds = race["scratch_seconds"]  # the race's winner reused as this arm: its own fit
    row.update(
        {
            "time (s)": float(seconds),
            "epochs to best": best[-1] if best else epochs,
            "epochs": epochs,
            "trainable": int(trainable),
        }
    )
    return row


def raw_row(name: str, result: dict[str, Any], task: str) -> dict[str, Any]:
    """The table row of a raw-input baseline (no network: no epochs)."""
    metrics = result["metrics"]
    split = "test" if "test" in metrics else "val"
    row: dict[str, Any] = {"arm": name, "kind": "scratch"}
    for m in TABLE_METRICS.get(task, ()):
        row[f"{split} {m}"] = metrics.get(split, {}).get(m)
    if split != "val":
        row[f"val {TABLE_METRICS[task][0]}"] = metrics.get("val", {}).get(TABLE_METRICS[task][0])
    row.update(
        {"time (s)": float(result["seconds"]), "epochs to best": 0, "epochs": 0,
         "trainable": int(result["trainable"])}
    )  # fmt: skip
    return row


def test_values(
    models: Mapping[str, GraftModel], dataset: Dataset, metric: str
) -> dict[str, np.ndarray] | None:
    """Per-example values of ``metric`` on the test split for every arm (None: not measurable)."""
    if metric not in PER_EXAMPLE or dataset.test is None or not len(dataset.test):
        return None
    value = PER_EXAMPLE[metric][0]
    out = {}
    for name, model in models.items():
        samples = model.samples_for(dataset)
        out[name] = value(samples.targets, model.predict_outputs(samples))
    return out


def add_intervals(
    rows: list[dict[str, Any]], per_example: Mapping[str, np.ndarray] | None, metric: str
) -> None:
    """Add each arm's 95% bootstrap interval over test examples as a ``low-high`` column."""
    if per_example is None:
        return
    for i, row in enumerate(rows):
        values = per_example.get(row["arm"])
        if values is None:
            continue
        ci = bootstrap_interval(values, PER_EXAMPLE[metric][1])
        key = next(k for k in row if k.endswith(f" {metric}"))
        cells = [(k, v) for k, v in row.items() if k != "95% interval"]
        at = [k for k, _ in cells].index(key) + 1  # right after the metric it qualifies
        cells.insert(at, ("95% interval", f"{ci.low:.3f}-{ci.high:.3f}"))
        rows[i] = dict(cells)


def make_verdict(
    rows: list[dict[str, Any]],
    metric: str,
    per_example: Mapping[str, np.ndarray] | None = None,
) -> tuple[str, str]:
    """The plain-language verdict and the recommended arm, from the table's rows.

    With ``per_example`` (arm -> per-example values of ``metric`` on the test split, see
    :data:`graft.evaluate.noise.PER_EXAMPLE`) a winner is called only when the paired bootstrap
    interval of the difference excludes 0 (and, for accuracy, the gap exceeds one test example);
    otherwise the verdict says there is no clear difference and recommends the cheaper arm.
    Arms are chosen on their validation score (``val <metric>``) so the reported test split
    stays an honest estimate; the verdict quotes the reported split's figures.
    """
    key = next(k for k in rows[0] if k.endswith(f" {metric}"))
    choose = f"val {metric}" if all(f"val {metric}" in r for r in rows) else key
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    scored = [r for r in rows if r.get(key) is not None and r.get(choose) is not None]
    best = max(scored, key=lambda r: sign * r[choose])
    transfer = [r for r in scored if r["kind"] == "transfer"]
    scratch = [r for r in scored if r["kind"] == "scratch"]
    if not transfer or not scratch:
        missing = "from-scratch baseline" if not scratch else "transfer arm"
        text = f"No {missing} compared. Best: {best['arm']} ({key} {format_value(best[key])})."
        return text, str(best["arm"])
    # On a tie a named arm is quoted before ``auto`` (auto's race may return that very arm).
    t = max(transfer, key=lambda r: (sign * r[choose], r["arm"] != "auto"))
    s = max(scratch, key=lambda r: (sign * r[choose], r["arm"] != "auto"))
    gain = sign * (t[choose] - s[choose])
    amount = _amount(gain, metric) + (" on validation" if choose != key else "")
    noise = _noise(per_example, t["arm"], s["arm"], metric)
    if noise is not None and not clears_noise(noise, metric):
        return _no_clear_difference(t, s, key, metric, noise)
    within = "" if noise is None else f", 95% interval {_span(noise, metric, sign)}"
    if noise is not None and choose != key:  # the interval is the test split's, not validation's
        oriented = sign * (t[key] - s[key]) * (1.0 if gain > 0 else -1.0)  # winner - loser
        within = f" (on test {_signed(oriented, metric)}{within})"
    if gain > 0:
        text = (
            f"Transfer helps: {t['arm']} beats the best from-scratch baseline ({s['arm']}) by "
            f"{amount}{within} ({key} {format_value(t[key])} vs {format_value(s[key])}). "
            f"Use {t['arm']}."
        )
        return text, str(t["arm"])
    how = "matches" if gain == 0 else "beats"
    by = "" if gain == 0 else f" by {amount}{within}"
    text = (
        f"Transfer does not help here: the best from-scratch baseline ({s['arm']}) {how} the "
        f"best transfer arm ({t['arm']}){by} ({key} {format_value(s[key])} vs "
        f"{format_value(t[key])}). Use {s['arm']} (from scratch), or try another backbone."
    )
    return text, str(s["arm"])


def _noise(
    per_example: Mapping[str, np.ndarray] | None, a: str, b: str, metric: str
) -> Interval | None:
    """Paired bootstrap of metric(a) - metric(b) over the test examples, when both are known."""
    if per_example is None or a not in per_example or b not in per_example:
        return None
    if metric not in PER_EXAMPLE:
        return None
    return paired_difference(per_example[a], per_example[b], PER_EXAMPLE[metric][1])


def _span(diff: Interval, metric: str, sign: float) -> str:
    """The interval of the verdict's gap (winner minus loser; points for fractions)."""
    low, high = sorted((sign * diff.low, sign * diff.high))
    if sign * diff.value < 0:  # the from-scratch side wins: orient as scratch minus transfer
        low, high = -high, -low
    return f"{_signed(low, metric)} to {_signed(high, metric)}"


def _signed(value: float, metric: str) -> str:
    """A signed gap: points (one decimal) for fractions, 4 significant digits otherwise."""
    if metric in _FRACTIONS:
        return f"{100 * value:+.1f} points"
    return f"{value:+.4g}"


def _no_clear_difference(
    t: dict[str, Any], s: dict[str, Any], key: str, metric: str, noise: Interval
) -> tuple[str, str]:
    """Neither side wins beyond the noise: recommend the arm that took less training time."""
    # Ties go to the from-scratch baseline: no pretrained weights to ship.
    cheaper = min((s, t), key=lambda r: (r.get("time (s)", 0.0), r.get("trainable", 0)))
    one = f"; one test example is {100 / noise.n:.2f} points" if metric == "accuracy" else ""
    text = (
        f"No clear difference: the best transfer arm ({t['arm']}, {key} {format_value(t[key])}) "
        f"and the best from-scratch baseline ({s['arm']}, {format_value(s[key])}) differ by "
        f"{_amount(noise.value, metric)}, within the noise of {noise.n} test examples "
        f"(95% interval of the difference {_signed(noise.low, metric)} to "
        f"{_signed(noise.high, metric)}{one}). Use {cheaper['arm']}, the cheaper to train "
        f"({float(cheaper.get('time (s)', 0.0)):.1f} s)."
    )
    return text, str(cheaper["arm"])


def _amount(gain: float, metric: str) -> str:
    size = abs(gain)
    if metric in _FRACTIONS:
        return f"{100 * size:.1f} points of {metric}"
    return f"{format_value(size)} {metric}"


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Format every cell once (metric rounding as everywhere, seconds to 0.1 s)."""
    out = []
    for r in rows:
        out.append({k: (f"{v:.1f}" if k == "time (s)" else format_value(v)) for k, v in r.items()})
    return out


def format_table(rows: list[dict[str, str]]) -> str:
    """Aligned text columns: labels left, numbers right."""
    cols = list(rows[0]) if rows else []
    width = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in cols}
    left = {"arm", "kind"}

    def line(cells: Mapping[str, str]) -> str:
        return "  ".join(
            cells.get(c, "").ljust(width[c]) if c in left else cells.get(c, "").rjust(width[c])
            for c in cols
        )

    header = line({c: c for c in cols})
    return "\n".join([header, "  ".join("-" * width[c] for c in cols), *map(line, rows)])


def _importance(models: dict[str, GraftModel], data: Dataset) -> dict[str, float] | None:
    """Layer-group importance of the pretrained backbone under the trained head.

    Measured on the feature-extraction arm (pretrained weights untouched, head trained): the
    gradients say which groups the task pulls on hardest, i.e. which to unfreeze first.
    """
    from graft.evaluate.importance import importance_batches, layer_importance

    model = models.get("feature_extraction")
    if model is None or not len(data.train):
        return None
    return layer_importance(model, importance_batches(model, data.train, n_batches=2))
