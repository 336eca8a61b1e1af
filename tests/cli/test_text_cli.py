"""Text end to end through the command line: fit, save, load, predict, evaluate on BBC News."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from graft.cli import main


def test_fit_predict_evaluate_text_folder(
    bbc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "news"
    code = main(
        ["fit", str(bbc_dir), "--backbone", "minilm", "--strategy", "two-stage", "--epochs",
         "2", "--max-length", "64", "--lr", "0.01", "--batch-size", "16", "--out", str(out),
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "strategy: two_stage" in printed and "layer.5" in printed and "test metrics" in printed
    assert (out / "tokenizer").is_dir()

    assert main(["predict", str(out), "--text", "The band's new album tops the charts",
                 "--format", "json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["source"] == "--text 1" and rows[0]["prediction"] in {
        "business", "entertainment", "politics", "sports", "tech"}  # fmt: skip

    table = tmp_path / "texts.csv"
    bodies = [f.read_text() for f in sorted((bbc_dir / "sports").glob("*.txt"))[:3]]
    pd.DataFrame({"body": bodies}).to_csv(table, index=False)
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), str(table), "--text-column", "body", "-o", str(preds)]) == 0
    got = list(csv.DictReader(preds.open()))
    assert [r["source"] for r in got] == [f"{table} row {i}" for i in (1, 2, 3)]

    assert main(["evaluate", str(out), str(bbc_dir)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_fit_a_table_with_a_text_column(
    bbc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"review": f.read_text()[:400], "stars": str(1 + i % 2)}
        for i, topic in enumerate(("sports", "business"))
        for f in sorted((bbc_dir / topic).glob("*.txt"))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "reviews.csv", index=False)
    code = main(
        ["fit", str(tmp_path / "reviews.csv"), "--text-column", "review", "--label-column",
         "stars", "--strategy", "feature-extraction", "--epochs", "30", "--lr", "0.05",
         "--out", str(tmp_path / "m"), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "text data: backbone minilm" in printed and "2 classes" in printed
    assert main(["predict", str(tmp_path / "m"), "x.png"]) == 2  # a file that is not there
