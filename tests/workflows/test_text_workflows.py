"""Text through the measuring workflows: the advisor's guard, stored embeddings, rank, the demo's parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graft.data import load
from graft.measure.probes import tfidf_probe
from graft.workflows.advise import advise
from graft.workflows.demo_text import few_per_class, tfidf_baseline
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
    base = tfidf_baseline(few.train, data.test)
    assert 0.0 <= base["accuracy"] <= 1.0 and set(base) == {"accuracy", "macro_f1"}
