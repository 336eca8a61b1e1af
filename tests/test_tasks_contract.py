"""Every registered task goes end to end: table -> fit -> save -> load -> predict -> evaluate.

The test loops over the task registry, so a new task is covered without editing the loop; it
only needs a recipe in ``RECIPES`` (how to read it from the digits table), and fails until it
has one. Labels derive from the digit: multilabel {even, big (>= 5)}, multitask {digit class,
digit value as regression, the multilabel tags}.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import graft
from graft.cli import main
from graft.tasks import TASKS
from graft.testing import tiny_backbone

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"]
QUIET = ["--batch-size", "16", "--no-progress", "--no-augment", "--epochs", "1"]

#: task -> (graft.fit keywords, the same as graft fit options, prediction keys expected).
RECIPES: dict[str, tuple[dict[str, Any], list[str], set[str]]] = {
    "classification": (
        {"label_column": "digit"},
        ["--label-column", "digit"],
        {"prediction", "probability"},
    ),
    "regression": ({"target_columns": ["value"]}, ["--target-columns", "value"], {"value"}),
    "multilabel": (
        {"label_column": "tags", "label_separator": ";"},
        ["--label-column", "tags", "--label-separator", ";"],
        {"prediction", "p_big", "p_even"},
    ),
    "multitask": (
        {"task": "multitask", "target_columns": ["digit:classification", "value", "tags:multilabel"]},
        ["--task", "multitask", "--target-columns", "digit:classification,value,tags:multilabel"],
        {"digit_prediction", "digit_probability", "value_value", "tags_prediction", "tags_p_big"},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def table(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits as a table: path, digit (whole number), value (float), tags (a;b)."""
    out = tmp_path_factory.mktemp("table") / "digits.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "digit", "value", "tags"])
        for p in sorted(digits_dir.rglob("*.png")):
            d = int(p.parent.name)
            tags = [t for t, on in (("even", d % 2 == 0), ("big", d >= 5)) if on]
            w.writerow([str(p), d, float(d), ";".join(tags)])
    return out


def _recipe(name: str) -> tuple[dict[str, Any], list[str], set[str]]:
    if name not in RECIPES:
        pytest.fail(f"task {name!r} is registered but has no recipe in RECIPES; add one")
    return RECIPES[name]


def _finite_metrics(metrics: dict[str, float]) -> None:
    assert metrics
    assert all(math.isfinite(v) for v in metrics.values()), metrics


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_through_the_python_api(
    name: str, table: Path, digits_dir: Path, tmp_path: Path
) -> None:
    kwargs, _, keys = _recipe(name)
    out = tmp_path / "model"
    model = graft.fit(
        table,
        backbone=tiny_backbone(image_size=32),
        strategy="feature_extraction",
        epochs=1,
        progress=False,
        out=out,
        log=lambda s: None,
        **kwargs,
    )
    assert model.task_spec.kind == name
    loaded = graft.load(out)
    assert loaded.task_spec == model.task_spec
    rows = loaded.predict([digits_dir / "4"])
    assert len(rows) == len(list((digits_dir / "4").iterdir()))
    assert keys <= set(rows[0])
    _finite_metrics(loaded.evaluate(table))


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_through_the_cli(
    name: str, table: Path, digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, options, keys = _recipe(name)
    out = tmp_path / "model"
    fit = [sys.executable, "-m", "graft.cli", "fit", str(table), *TINY, *QUIET]
    fit += ["--strategy", "feature-extraction", "--out", str(out), *options]
    done = subprocess.run(fit, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert main(["predict", str(out), str(digits_dir / "4"), "-o", str(tmp_path / "p.json")]) == 0
    records = json.loads((tmp_path / "p.json").read_text())
    assert keys <= set(records[0])
    assert main(["predict", str(out), str(digits_dir / "4"), "-o", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", newline="") as f:
        assert keys <= set(next(csv.DictReader(f)))
    capsys.readouterr()
    assert main(["evaluate", str(out), str(table)]) == 0
    assert capsys.readouterr().out.strip()


def test_label_separator_alone_reads_a_multilabel_table(table: Path, tmp_path: Path) -> None:
    """``graft fit t.csv --label-separator ';'`` used to end in a TypeError traceback."""
    out = tmp_path / "model"
    argv = ["fit", str(table), *TINY, *QUIET, "--strategy", "feature-extraction"]
    assert main([*argv, "--label-separator", ";", "--out", str(out)]) == 0  # finds ``tags``
    assert graft.load(out).task_spec.kind == "multilabel"


#: Texts: task -> (graft.fit keywords on the BBC table, prediction keys expected). Labels derive
#: from the article: its topic, its length in hundreds of words, tags {long (> 400 words),
#: money (business or tech)}.
TEXT_RECIPES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "classification": ({"label_column": "topic"}, {"prediction", "probability"}),
    "regression": ({"target_columns": ["words"]}, {"words"}),
    "multilabel": ({"label_column": "tags", "label_separator": ";"}, {"prediction", "p_money"}),
    "multitask": (
        {"task": "multitask", "target_columns": ["topic:classification", "words", "tags:multilabel"]},
        {"topic_prediction", "topic_probability", "words_words", "tags_prediction"},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def text_table(bbc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 BBC articles as a table: body, topic, words (hundreds), tags (a;b)."""
    out = tmp_path_factory.mktemp("text-table") / "articles.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["body", "topic", "words", "tags"])
        for p in sorted(bbc_dir.rglob("*.txt")):
            body, topic = p.read_text(encoding="latin-1"), p.parent.name
            n = len(body.split())
            tags = [
                t for t, on in (("long", n > 400), ("money", topic in ("business", "tech"))) if on
            ]
            w.writerow([body, topic, n / 100, ";".join(tags)])
    return out


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_on_texts(name: str, text_table: Path, tmp_path: Path) -> None:
    """The same path on texts: a text table -> fit -> save -> load -> predict -> evaluate."""
    from graft.errors import BackboneError
    from graft.testing import tiny_text_backbone

    if name not in TEXT_RECIPES:
        pytest.fail(f"task {name!r} is registered but has no recipe in TEXT_RECIPES; add one")
    kwargs, keys = TEXT_RECIPES[name]
    try:
        backbone = tiny_text_backbone()
    except BackboneError as e:
        pytest.skip(str(e))
    out = tmp_path / "model"
    model = graft.fit(
        text_table, text_column="body", backbone=backbone, max_length=32, batch_size=16,
        strategy="feature_extraction", epochs=1, progress=False, out=out, log=lambda s: None,
        **kwargs,
    )  # fmt: skip
    assert model.task_spec.kind == name and model.input_kind == "text"
    loaded = graft.load(out)
    assert loaded.task_spec == model.task_spec and loaded.input_kind == "text"
    texts = ["Shares rose after the bank beat profit forecasts.", "The striker scored twice."]
    rows = loaded.predict(texts)
    assert [r["text"] for r in rows] == texts and keys <= set(rows[0])
    assert rows == model.predict(texts), "the saved model predicts as the trained one"
    _finite_metrics(loaded.evaluate(text_table))
