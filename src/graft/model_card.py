"""The model card: a ``README.md`` written beside every saved model, from its run record.

It says what a reader needs before using the model: the data and task, the metrics with the
split they were measured on, the plan and (for ``--strategy auto``) the advisor's reasoning, the
retention report, the backbone's licence and origin (and, for ``--backbone auto``, the candidates
ranked and their scores), and how to load the model (with graft, or
with ONNX Runtime alone after ``graft export``). Everything comes from the record and the
backbone spec; nothing is measured here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from graft.backbones.bundled import BUNDLED
from graft.record import RunRecord

if TYPE_CHECKING:
    from graft.backbones.base import BackboneSpec, DataConfig
    from graft.tasks.base import TaskSpec

#: Licence and origin of backbones that are not bundled, by their source.
_SOURCE_ORIGIN = {
    "timm": ("see the model's page on the Hugging Face Hub (timm/{arch})", "timm/{arch}"),
    "random": ("none (randomly initialised, no pretrained weights)", "random initialisation"),
    "local": ("as the weights file's author set it", "a local weights file"),
    "graft": ("as the source model's card says", "a saved graft model"),
}


def backbone_provenance(spec: BackboneSpec) -> tuple[str, str]:
    """The backbone's licence and origin, as far as graft knows them."""
    if spec.source == "bundled" and spec.name in BUNDLED.names():
        entry = BUNDLED.get(spec.name)
        return entry.license, entry.origin
    licence, origin = _SOURCE_ORIGIN.get(spec.source, ("unknown", spec.source))
    return licence.format(arch=spec.arch), origin.format(arch=spec.arch)


def render_card(
    record: RunRecord, backbone: BackboneSpec, data_config: DataConfig, task: TaskSpec
) -> str:
    """The model card (Markdown) of a model with this record, backbone, preprocessing and task."""
    parts = [
        f"# {task.kind} model on {record.data.get('source', 'unknown data')}",
        "Trained with graft"
        + (f" {record.graft_version}" if record.graft_version else "")
        + (f" in {record.seconds:.0f} s." if record.seconds else "."),
        _data_section(record, task),
        _metrics_section(record),
        _plan_section(record),
        _retention_section(record),
        _backbone_section(backbone, data_config),
        _ranking_section(record),
        _usage_section(),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _data_section(record: RunRecord, task: TaskSpec) -> str:
    data = record.data
    lines = ["## Data and task", f"- task: {task.kind}, {task.num_outputs} outputs"]
    if task.class_names:
        lines.append(f"- classes: {', '.join(task.class_names)}")
    if task.target_names:
        lines.append(f"- targets: {', '.join(task.target_names)}")
    for key in ("source", "input_kind", "train", "val", "test", "skipped"):
        if data.get(key) not in (None, [], {}):
            value = data[key]
            lines.append(f"- {key}: {len(value) if isinstance(value, list) else value}")
    if record.split:
        lines.append(f"- split: {json.dumps(record.split, sort_keys=True)}")
    return "\n".join(lines)


def _metrics_section(record: RunRecord) -> str:
    if not record.metrics:
        return ""
    lines = ["## Metrics", "| split | metric | value |", "|---|---|---|"]
    for split, values in record.metrics.items():
        for name, value in values.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            lines.append(f"| {split} | {name} | {shown} |")
    return "\n".join(lines)


def _plan_section(record: RunRecord) -> str:
    lines = []
    if record.plan:
        lines += ["## Plan", f"- strategy: {record.plan.get('strategy', 'unknown')}"]
        for stage in record.plan.get("stages", []):
            lines.append(f"- stage: {_short(stage)}")
    if record.advice:
        lines += ["", "### The advisor's reasoning"]
        reasons = record.advice.get("reasons") or record.advice.get("reasoning")
        if isinstance(reasons, list):
            lines += [f"- {r}" for r in reasons]
        else:
            lines.append(f"```json\n{json.dumps(record.advice, indent=1, default=str)}\n```")
    return "\n".join(lines).strip()


def _retention_section(record: RunRecord) -> str:
    retention = record.extensions.get("retention")
    if not retention:
        return ""
    body = json.dumps(retention, indent=1, default=str, sort_keys=True)
    return f"## Retention (what the backbone kept of its source task)\n```json\n{body}\n```"


def _backbone_section(spec: BackboneSpec, data_config: DataConfig) -> str:
    licence, origin = backbone_provenance(spec)
    return "\n".join(
        [
            "## Backbone",
            f"- name: {spec.name} (architecture {spec.arch}, source {spec.source})",
            f"- pretrained: {spec.pretrained}",
            f"- licence: {licence}",
            f"- origin: {origin}",
            f"- preprocessing: input {list(data_config.input_size)}, mean {list(data_config.mean)}, "
            f"std {list(data_config.std)}, {data_config.interpolation} resize, "
            f"crop {data_config.crop_pct}",
        ]
    )


def _ranking_section(record: RunRecord) -> str:
    """``--backbone auto``: the candidates ranked, their scores and the one picked."""
    ranking = record.backbone_ranking
    if not ranking:
        return ""
    lines = ["### How the backbone was chosen (--backbone auto)"]
    for row in ranking.get("candidates", []):
        value = row.get("score")
        shown = f"{value:.4f}" if isinstance(value, int | float) else "not scored"
        note = f" ({row['note']})" if row.get("note") else ""
        lines.append(f"- {row.get('candidate')}: {ranking.get('score')} {shown}{note}")
    size = ranking.get("image_size")
    lines.append(f"- picked: {ranking.get('backbone')}" + (f" at {size} px" if size else ""))
    return "\n".join(lines)


def _usage_section() -> str:
    return (
        "## How to load it\n"
        "```python\nimport graft\nmodel = graft.load('THIS_FOLDER')\n"
        "rows = model.predict(['image.jpg'])\n```\n"
        "Command line: `graft predict THIS_FOLDER image.jpg`; serve it over HTTP with "
        "`graft serve THIS_FOLDER`.\n"
        "Without graft: `graft export THIS_FOLDER --format onnx` writes `model.onnx` and "
        "`preprocessing.json` (size, mean, std, interpolation, crop, class names); "
        "`onnxruntime.InferenceSession('model.onnx')` then runs it on images preprocessed as "
        "that file says."
    )


def _short(stage: Any) -> str:
    if not isinstance(stage, dict):
        return str(stage)
    keep = ("name", "epochs", "lr", "multipliers", "batchnorm")
    return ", ".join(f"{k}={stage[k]}" for k in keep if k in stage)
