"""``graft rank``, ``graft advise`` and ``graft similarity`` on texts: a table's text column,
the token limit, and output that says texts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graft.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*truncated:UserWarning")
SHORT = ["--max-length", "32", "--no-progress"]


@pytest.fixture(scope="module")
def articles(bbc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 60 BBC articles as a table whose columns no reader guesses: body and topic."""
    out = tmp_path_factory.mktemp("articles") / "articles.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["body", "topic"])
        for p in sorted(bbc_dir.rglob("*.txt")):
            w.writerow([p.read_text(encoding="latin-1"), p.parent.name])
    return out


def test_rank_and_advise_read_the_text_column(
    articles: Path, minilm: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del minilm  # skips when the bundled encoder is not installed
    cache = ["--cache-dir", str(tmp_path / "cache")]
    table = [str(articles), "--text-column", "body", "--label-column", "topic"]
    assert main(["rank", *table, "--backbones", "minilm", *SHORT, *cache]) == 0
    out = capsys.readouterr().out
    assert "minilm" in out and "computed" in out
    assert main(["advise", *table, "--backbone", "minilm", *SHORT, *cache]) == 0
    out = capsys.readouterr().out
    assert "TF-IDF" in out


def test_similarity_says_texts(
    bbc_dir: Path, minilm: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del minilm
    sides = [str(bbc_dir / "business"), str(bbc_dir / "sports")]
    assert main(["similarity", *sides, "--backbone", "minilm", *SHORT]) == 0
    out = capsys.readouterr().out
    assert "source 12 texts, target 12 texts, 384 features" in out
    assert "images" not in out
