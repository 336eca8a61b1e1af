"""The HTML reports of ``graft fit --report`` and ``graft compare --report``.

Both are assembled from what the run recorded (``model.record``: plan, advice, metrics, history)
and from the comparison's rows, so the report shows the numbers that were printed and stored.
Plots are computed here: learning curves from the history, a confusion matrix (classification)
or predicted-vs-true and residual plots (regression) on the held-out split, and layer-group
importance (:mod:`graft.evaluate.importance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graft.evaluate import curves
from graft.evaluate.raw import RAW_BASELINES
from graft.evaluate.report import Report
from graft.metrics import metric_direction

if TYPE_CHECKING:
    from graft.data.base import Dataset, Samples
    from graft.evaluate.compare import Comparison
    from graft.model import GraftModel


def write_fit_report(model: GraftModel, data: Dataset, path: str | Path) -> Path:
    """Write the report of one fit: plan, advisor, metrics, curves, evaluation plots."""
    plan = model.record.plan or {}
    report = Report(
        f"{plan.get('strategy', 'fit')} on {Path(str(data.source)).name or data.source}",
        subtitle=f"graft fit: {data.task}",
    )
    report.add_summary(_fit_summary(model, data))
    add_model_sections(report, model, data)
    from graft.evaluate.importance import importance_batches, layer_importance

    if len(data.train):
        scores = layer_importance(model, importance_batches(model, data.train, n_batches=2))
        add_importance(report, scores, "the trained model")
    return report.write(path)


def _fit_summary(model: GraftModel, data: Dataset) -> dict[str, Any]:
    record = model.record
    out: dict[str, Any] = {
        "data": str(data.source),
        "backbone": str(model.backbone.spec.name),
        "strategy": (record.plan or {}).get("strategy"),
    }
    out.update({f"{k} examples": len(v) for k, v in data.splits().items()})
    if record.seconds is not None:
        out["time (s)"] = f"{float(record.seconds):.1f}"
    return out


def add_model_sections(
    report: Report, model: GraftModel, data: Dataset, *, title: str = ""
) -> Report:
    """Plan, backbone ranking, advisor reasoning, metrics, learning curves and evaluation plots
    of one model."""
    from graft.strategies.base import Plan
    from graft.strategies.render import plan_rows
    from graft.training.params import trainable_counts

    record, prefix = model.record, f"{title}: " if title else ""
    if record.plan:
        plan = Plan.from_dict(record.plan)
        rows = plan_rows(plan, trainable_counts(model, plan))
        report.add_plan(rows, strategy=plan.strategy, notes=plan.notes, title=f"{prefix}Plan")
    ranking = (record.backbone_ranking or {}).get("lines")
    if ranking:
        report.add_text(f"{prefix}How the backbone was chosen", [str(x) for x in ranking])
    lines = advice_lines(record.advice)
    if lines:
        report.add_text(f"{prefix}Advisor's reasoning", lines)
    if record.metrics:
        report.add_metrics(record.metrics, f"{prefix}Metrics")
    if record.history:
        report.add_figure(
            f"{prefix}Learning curves",
            curves.plot_learning_curves(record.history),
            "Train and validation loss and validation metrics per epoch; dashed lines mark "
            "stages, dotted lines the epochs whose weights were kept.",
        )
    held_out = data.test if data.test is not None and len(data.test) else data.val
    if len(held_out):
        add_evaluation_plots(report, model, held_out, data, prefix)
    return report


def advice_lines(advice: Any) -> list[str]:
    """The advisor's reasoning as lines, whatever form it was recorded in."""
    if not advice:
        return []
    if isinstance(advice, str):
        return [advice]
    if isinstance(advice, Mapping):
        if advice.get("lines"):
            return [str(line).strip() for line in advice["lines"]]
        reasons = [str(r) for r in advice.get("reasons", ())]
        head = f"advice: {advice['strategy']}" if "strategy" in advice else ""
        return [line for line in [head, *reasons] if line]
    return [str(line) for line in advice]


def add_evaluation_plots(
    report: Report, model: GraftModel, samples: Samples, data: Dataset, prefix: str = ""
) -> None:
    """Confusion matrix and per-class table, or regression fit plots, on ``samples``."""
    from graft.metrics import confusion, per_class_report

    split = "test" if samples is data.test else "validation"
    outputs = model.predict_outputs(samples)
    kind = model.task_spec.kind
    if kind == "classification":
        names = [str(c) for c in (model.task_spec.class_names or [])]
        cm = confusion(samples.targets, outputs.argmax(axis=1), len(names))
        report.add_figure(
            f"{prefix}Confusion matrix ({split})", curves.plot_confusion_matrix(cm, names)
        )
        report.add_table(
            f"{prefix}Per-class results ({split})",
            per_class_report(samples.targets, outputs, names),
        )
    elif kind == "regression":
        targets = list(model.task_spec.target_names or ["target"])
        for i, name in enumerate(targets[:4]):
            report.add_figure(
                f"{prefix}Predicted vs true, residuals: {name} ({split})",
                curves.plot_regression(samples.targets, outputs, target=i, name=name),
            )


def add_importance(report: Report, scores: Mapping[str, float], measured_on: str) -> None:
    report.add_figure(
        "Layer-group importance",
        curves.plot_layer_importance(scores, title="Mean |gradient| per layer group"),
        f"Mean absolute gradient of the training loss per layer group on a few training "
        f"batches, measured on {measured_on}. The groups the task pulls on hardest are the "
        "first candidates to unfreeze.",
    )


def write_compare_report(result: Comparison, path: str | Path) -> Path:
    """Write the comparison report: verdict and table, curves, the recommended arm's details."""
    from graft.evaluate.arms import ARMS

    data, budget = result.dataset, result.budget
    report = Report(
        f"Is transfer helping? {Path(str(data.source)).name or data.source}",
        subtitle=f"graft compare: {len(result.rows)} arms on the same splits",
    )
    report.add_summary(
        {"data": str(data.source), "backbone": result.backbone, "recommended": result.recommended}
        | {f"{k} examples": len(v) for k, v in data.splits().items()}
        | {"epochs per arm": budget.epochs, "time (s)": f"{result.seconds:.1f}"}
    )
    report.add_comparison(result.table_rows(), result.verdict, title="Comparison")
    arms = [{"arm": r["arm"], "what it is": ARMS.get(r["arm"]).description} for r in result.rows]
    if result.baseline is not None:
        raw = RAW_BASELINES[data.input_kind]
        arms.append({"arm": raw.name, "what it is": raw.description})
    arms += [{"arm": n, "what it is": f"not run: {why}"} for n, why in result.skipped.items()]
    report.add_table("Arms", arms, caption=budget_caption(result))
    if result.curve_runs:
        report.add_figure(
            "Data efficiency",
            curves.plot_data_efficiency(result.curve_runs, result.metric, x="n_train"),
            f"{result.metric} on the same held-out split at each training-set size; mean ± one "
            f"standard deviation over {budget.seeds} random subsets per size.",
        )
    if result.importance:
        add_importance(report, result.importance, "the feature-extraction arm")
    if result.calibration is not None:
        report.add_text("Calibration", [result.calibration_line()])
    shown = _detailed_arm(result)
    add_model_sections(report, result.models[shown], data, title=shown)
    for row in result.rows:
        history = result.models[row["arm"]].record.history
        if row["arm"] != shown and history:
            report.add_figure(
                f"{row['arm']}: learning curves",
                curves.plot_learning_curves(history),
            )
    return report.write(path)


def _detailed_arm(result: Comparison) -> str:
    """The arm whose model the report details: the recommended one, or (when the raw-input
    baseline is recommended, which has no network) the best trained arm on validation."""
    if result.recommended in result.models:
        return result.recommended
    key = f"val {result.metric}"
    sign = 1.0 if metric_direction(result.metric) == "max" else -1.0
    scored = [r for r in result.rows if r.get(key) is not None] or result.rows
    return str(max(scored, key=lambda r: sign * (r.get(key) or 0.0))["arm"])


def budget_caption(result: Comparison) -> str:
    b = result.budget
    if result.dataset.input_kind == "text":
        length = f"{b.max_length} tokens" if b.max_length else "each backbone's own length"
        inputs = f"texts read up to {length}"
    else:
        size = f"{b.image_size} px" if b.image_size else "the backbone's own size"
        small = f"{b.small_cnn_size} px" if b.small_cnn_size else "the data's own size"
        inputs = f"images at {size} (small_cnn at {small})"
    return (
        f"Budget: {b.epochs} epochs per arm (passes over the training set), split among its "
        f"stages; learning rate {b.lr:g}, batch size {b.batch_size}, {inputs}; one seed, the "
        "same splits for every arm. "
        "time (s): the whole fit, evaluation included; epochs to best: the epoch whose weights "
        "were kept, counted across stages; trainable: the most parameters any stage trains."
    )
