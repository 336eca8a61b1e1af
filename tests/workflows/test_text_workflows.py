"""Text through the measuring workflows: the advisor's guard, stored embeddings, rank, the demo's parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graft.data import load
from graft.evaluate.raw import raw_baseline
from graft.measure.probes import tfidf_probe
from graft.workflows.advise import advise
from graft.workflows.demo_text import few_per_class
from graft.workflows.measure import rank


def test_advisor_guards_text_with_tfidf_and_says_the_gap_is_unmeasured(
    bbc_dir: Path, tmp_path: Path
) -> None:
    advice = advise(bbc_dir, backbone="minilm", cache_dir=str(tmp_path))
    f, lines = advice.facts, "\n".join(advice.lines())
    assert f.raw_input == "TF-IDF + logistic regression"
    assert f.probe is not None and f.pixel_probe is not None and 0.5 < f.probe <= 1.0
    assert f.gap is None and "pretraining texts" in lines and "cannot be measured" in lines
    assert "on TF-IDF + logistic regression" in lines
    again = advise(bbc_dir, backbone="minilm", cache_dir=str(tmp_path))
    assert again.facts.probe == f.probe  # the stored embeddings are read back, not recomputed


def test_rank_scores_the_text_encoder(bbc_dir: Path, tmp_path: Path) -> None:
    ranking = rank(bbc_dir, backbones=["minilm"], cache_dir=str(tmp_path))
    row, data = ranking.rows[0], load(bbc_dir)
    assert row.score is not None and row.dim == 384
    assert row.computed == len(data.train) + len(data.val)  # rank scores train + val


def test_tfidf_probe_and_baseline_on_real_articles(bbc_dir: Path) -> None:
    data = load(bbc_dir, seed=0)
    assert data.test is not None and data.train.texts is not None and data.val.texts is not None
    acc = tfidf_probe(
        (data.train.texts, data.train.targets), (data.val.texts, data.val.targets), data.task
    )
    assert 0.4 < acc <= 1.0  # five topics: chance is 0.2
    few = few_per_class(data, 3, seed=1)
    assert np.bincount(few.train.targets).tolist() == [3] * 5
    assert set(few.train.paths).isdisjoint(few.val.paths) and few.test is data.test
    base = raw_baseline(few)["metrics"]["test"]  # the demo's and compare's TF-IDF row
    assert 0.0 <= base["accuracy"] <= 1.0 and {"accuracy", "macro_f1"} <= set(base)


def test_text_demo_plans_fits_and_compares_with_tfidf(
    minilm: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's path at a tiny setting: the advisor's plan, test metrics, TF-IDF, report."""
    import warnings

    import graft
    from graft.workflows.demo_text import run_text_demo

    del minilm  # skips when the bundled encoder is not installed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # truncated articles, undecodable files
        folder = run_text_demo(
            tmp_path, per_class=3, test_per_class=4, max_length=32, epochs=2, progress=False
        )
    out = capsys.readouterr().out
    assert "3 labelled articles per topic" in out and "20 held-out articles" in out
    assert "TF-IDF + logistic regression on the same 15 labelled articles" in out
    assert "accuracy points (95% interval" in out and "20 articles)" in out
    assert (tmp_path / "report.html").is_file()
    assert graft.load(folder).input_kind == "text"
