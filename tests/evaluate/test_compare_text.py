"""``graft compare`` on texts: TF-IDF + logistic regression and a small text network from
scratch beside the transfer arms, on real BBC News articles, with the curve and the report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import graft
from graft.cli import main
from graft.data import load as load_data
from graft.errors import BackboneError
from graft.evaluate.arms import ARMS
from graft.evaluate.compare import Comparison
from graft.evaluate.raw import raw_baseline
from graft.measure.probes import tfidf_model
from graft.testing import tiny_text_backbone


def text_arms() -> list[str]:
    """Every registered arm that reads texts, in registry order."""
    return [n for n in ARMS.names() if ARMS.get(n).skip_reason("text") is None]


@pytest.fixture(scope="module")
def text_run(bbc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Comparison, Path]:
    """Every arm on 60 BBC articles with a tiny BERT; small_cnn asked for too (skipped)."""
    try:
        backbone = tiny_text_backbone()
    except BackboneError as e:
        pytest.skip(str(e))
    out = tmp_path_factory.mktemp("compare-text")
    result = graft.compare(
        bbc_dir, backbone=backbone, arms=ARMS.names(), baseline=True, epochs=2, batch_size=16,
        max_length=32, fractions=[0.5, 1.0], seeds=1, curve_arms=["small_text", "small_cnn"],
        budget="quick", cache_dir=str(out / "cache"), report=out / "report.html",
        log=lambda _: None,
    )  # fmt: skip
    return result, out / "report.html"


def test_every_text_arm_has_a_row_and_image_arms_say_why_not(
    text_run: tuple[Comparison, Path],
) -> None:
    result, _ = text_run
    assert [r["arm"] for r in result.rows] == text_arms()
    assert "small_text" in text_arms() and "small_cnn" not in text_arms()
    assert result.skipped["small_cnn"] == "small_cnn reads images, not texts"
    by = {r["arm"]: r for r in result.rows}
    assert by["small_text"]["kind"] == "scratch"
    assert by["feature_extraction"]["trainable"] < by["two_stage"]["trainable"]
    for row in result.rows:
        assert 0 <= row["test accuracy"] <= 1 and row["epochs"] <= 2
        assert result.models[row["arm"]].input_kind == "text"


def test_the_tfidf_row_is_a_contender_with_an_interval(text_run: tuple[Comparison, Path]) -> None:
    result, report = text_run
    assert result.baseline is not None and result.baseline["arm"] == "tfidf"
    assert "95% interval" in result.baseline
    assert result.per_example is not None and "tfidf" in result.per_example
    assert result.table().splitlines()[-1].split()[0] == "tfidf"
    page = report.read_text()
    assert ">tfidf<" in page and "not run: small_cnn reads images, not texts" in page
    assert "texts read up to 32 tokens" in page


def test_the_curve_trains_text_arms_only(text_run: tuple[Comparison, Path]) -> None:
    result, report = text_run
    assert {r["strategy"] for r in result.curve_runs} == {"small_text"}
    assert sorted(r["fraction"] for r in result.curve_runs) == [0.5, 1.0]
    assert "Data efficiency" in report.read_text()


def test_tfidf_row_is_the_advisors_text_probe(bbc_dir: Path) -> None:
    """One definition of the text baseline: the row equals tfidf_model fitted by hand."""
    data = load_data(bbc_dir, seed=0)
    assert data.test is not None
    result = raw_baseline(data)
    by_hand = tfidf_model("classification").fit(data.train.texts, data.train.targets)
    expected = by_hand.score(data.test.texts, data.test.targets)
    assert result["metrics"]["test"]["accuracy"] == pytest.approx(expected)
    proba = result["outputs"]["test"]
    assert proba.shape == (len(data.test), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_compare_cli_on_a_text_table(bbc_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    table = tmp_path / "articles.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["body", "topic"])
        for p in sorted(bbc_dir.rglob("*.txt")):
            w.writerow([p.read_text(encoding="latin-1"), p.parent.name])
    try:
        graft.backbones.create("minilm")
    except BackboneError as e:
        pytest.skip(str(e))
    code = main(
        ["compare", str(table), "--text-column", "body", "--label-column", "topic",
         "--backbone", "minilm", "--max-length", "32", "--arms", "feature_extraction,small_text",
         "--budget", "quick", "--epochs", "1", "--no-importance", "--no-progress",
         "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = [line.split()[0] for line in out.splitlines() if line.split()]
    assert "feature_extraction" in lines and "small_text" in lines
    assert "Transfer" in out or "No clear difference" in out
