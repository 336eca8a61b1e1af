"""``graft.compare``: every arm on the same splits, one table printed and reported alike."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from graft.errors import ConfigError
from graft.evaluate.arms import ARMS
from graft.evaluate.compare import Comparison, make_verdict
from graft.metrics import format_value
from graft.testing import tiny_backbone


def image_arms() -> list[str]:
    """Every registered arm that reads images, in registry order."""
    return [n for n in ARMS.names() if ARMS.get(n).skip_reason("image") is None]


def test_every_arm_has_a_row_within_the_budget(run: tuple[Comparison, list, Path]) -> None:
    result, _, _ = run
    assert [r["arm"] for r in result.rows] == image_arms()
    assert set(result.skipped) == set(ARMS.names()) - set(image_arms())
    assert all("not images" in why for why in result.skipped.values())
    for row in result.rows:
        assert row["kind"] == ARMS.get(row["arm"]).kind
        # 0: the head's linear start (fitted before any epoch) validated best
        assert 0 <= row["epochs to best"] <= row["epochs"] <= 2
        assert row["trainable"] > 0 and row["time (s)"] > 0
        assert 0 <= row["test accuracy"] <= 1
    by = {r["arm"]: r for r in result.rows}
    assert by["feature_extraction"]["trainable"] < by["two_stage"]["trainable"]
    assert by["scratch"]["trainable"] > by["two_stage"]["trainable"]


def test_rows_are_the_stored_numbers(run: tuple[Comparison, list, Path]) -> None:
    result, _, _ = run
    for row in result.rows:
        info = result.models[row["arm"]].info
        assert row["test accuracy"] == info["metrics"]["test"]["accuracy"]
        assert row["test macro_f1"] == info["metrics"]["test"]["macro_f1"]
        epochs = [r for r in info["history"] if r.get("kind") != "linear_start"]
        assert row["epochs"] == len(epochs)


def test_curves_use_the_comparisons_splits(run: tuple[Comparison, list, Path]) -> None:
    result, seen, _ = run
    data = result.dataset
    assert len(seen) == len(image_arms()) + 1  # every arm, then the curve's arm at 0.5
    for fitted in seen:
        assert fitted.val is data.val and fitted.test is data.test
        assert set(fitted.train.paths) <= set(data.train.paths)
    assert {id(d) for d in seen[: len(image_arms())]} == {id(data)}
    curve = result.curve_runs
    assert {r["strategy"] for r in curve} == {"feature_extraction"}
    assert sorted(r["fraction"] for r in curve) == [0.5, 1.0]
    full = [r for r in curve if r["fraction"] == 1.0]
    assert all(r["n_train"] == len(data.train) for r in full)
    by = {r["arm"]: r for r in result.rows}
    assert all(r["accuracy"] == by[r["strategy"]]["test accuracy"] for r in full)


def _html_table(page: str, title: str) -> list[list[str]]:
    section = page.split(f"<h2>{title}</h2>", 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        for tr in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def test_printed_table_and_report_agree(run: tuple[Comparison, list, Path]) -> None:
    result, _, report = run
    page = report.read_text()
    printed = [line.split() for line in result.table().splitlines()[2:]]
    assert _html_table(page, "Comparison") == printed
    assert html.escape(result.verdict, quote=True) in page
    assert printed[0][2] == format_value(result.rows[0]["test accuracy"])


def test_report_is_self_contained_with_plots(run: tuple[Comparison, list, Path]) -> None:
    result, _, report = run
    page = report.read_text()
    assert "http://" not in page and "https://" not in page
    for title in ("Data efficiency", "Layer-group importance", "Learning curves"):
        assert title in page
    assert "Confusion matrix (test)" in page
    assert page.count("data:image/png;base64,") >= len(result.rows) + 3
    assert result.importance is not None
    assert list(result.importance)[-1] == "head"


def test_verdict_names_the_winner_and_the_gap() -> None:
    rows = [
        {"arm": "scratch", "kind": "scratch", "test accuracy": 0.70},
        {"arm": "small_cnn", "kind": "scratch", "test accuracy": 0.80},
        {"arm": "two_stage", "kind": "transfer", "test accuracy": 0.95},
        {"arm": "feature_extraction", "kind": "transfer", "test accuracy": 0.90},
    ]
    text, best = make_verdict(rows, "accuracy")
    assert best == "two_stage"
    assert "Transfer helps" in text and "15.0 points" in text and "(small_cnn)" in text
    rows[1]["test accuracy"] = 0.97
    text, best = make_verdict(rows, "accuracy")
    assert best == "small_cnn" and "does not help" in text and "2.0 points" in text


def test_verdict_for_a_lower_is_better_metric() -> None:
    rows = [
        {"arm": "scratch", "kind": "scratch", "test rmse": 2.0},
        {"arm": "two_stage", "kind": "transfer", "test rmse": 1.5},
    ]
    text, best = make_verdict(rows, "rmse")
    assert best == "two_stage" and "0.5000 rmse" in text


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local weights file: the offline stand-in for a pretrained timm architecture."""
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_file(tiny_backbone(seed=3).model.state_dict(), str(path))
    return path


def test_cli_compare_table_and_report_agree(
    small_digits: Path, tiny_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graft.cli import main

    report = tmp_path / "compare.html"
    code = main(
        ["compare", str(small_digits), "--backbone", "timm:test_efficientnet",
         "--weights", str(tiny_weights), "--image-size", "32", "--budget", "quick",
         "--epochs", "1", "--arms", "small_cnn,feature_extraction", "--batch-size", "16",
         "--cache-dir", str(tmp_path / "cache"), "--report", str(report), "--no-importance"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["arm", "kind"])
    printed = [line.split() for line in lines[start + 2 : start + 4]]
    assert [row[0] for row in printed] == ["small_cnn", "feature_extraction"]
    page = report.read_text()
    assert _html_table(page, "Comparison") == printed
    verdict = lines[start + 5]
    # 10 test images cannot separate two one-epoch arms: the verdict may say so (issue 13).
    assert verdict.startswith(("Transfer", "No clear difference"))
    assert html.escape(verdict, quote=True) in page
    assert f"report: {report}" in out


def test_cli_compare_rejects_an_unknown_arm(small_digits: Path, capsys: Any) -> None:
    from graft.cli import main

    assert main(["compare", str(small_digits), "--arms", "two_stage,finetune"]) == 2
    err = capsys.readouterr().err
    assert "'finetune'" in err and "feature_extraction" in err  # what was wrong, what exists


def test_compare_folds_reports_mean_spread_and_a_pooled_verdict(
    small_digits: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    from graft.evaluate.folds import compare_folds

    result = compare_folds(
        small_digits, folds=2, backbone="timm:test_efficientnet", weights=tiny_weights,
        image_size=32, budget="quick", epochs=1, arms=["small_cnn", "feature_extraction"],
        batch_size=16, cache_dir=str(tmp_path / "cache"), importance=False, log=lambda m: None,
    )  # fmt: skip
    assert result.verdict.startswith("Over 2 splits: ")
    assert result.per_example is not None
    n_test = len(result.dataset.test)  # every fold splits the same data with the same fractions
    for row in result.rows:
        keys = list(row)
        assert keys[keys.index("test accuracy") + 1 : keys.index("test accuracy") + 3] == [
            "95% interval",
            "spread",
        ]
        values = result.per_example[row["arm"]]
        assert len(values) == 2 * n_test
        assert row["test accuracy"] == pytest.approx(values.mean())  # mean of the folds
        assert row["spread"] >= 0
    with pytest.raises(ConfigError, match="at least 2"):
        compare_folds(small_digits, folds=1)
