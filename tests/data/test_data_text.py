"""Text data: folders of .txt files and tables with a text column, with bad input listed."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graft.data import load
from graft.data.text import read_text, text_key, texts_to_predict
from graft.errors import DataError


def test_a_folder_of_txt_files_is_text(bbc_dir: Path) -> None:
    data = load(bbc_dir, seed=3)
    assert data.input_kind == "text" and data.task == "classification"
    assert data.class_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert data.test is not None and len(data.train) + len(data.val) + len(data.test) == 60
    first = data.train.paths[0]
    assert data.train.texts is not None and data.train.texts[0] == first.read_text()
    again = load(bbc_dir, seed=3)  # same seed, same split
    assert again.test is not None and again.test.paths == data.test.paths
    assert load(bbc_dir, seed=4).test.paths != data.test.paths  # type: ignore[union-attr]


def _table(bbc_dir: Path, tmp_path: Path) -> pd.DataFrame:
    rows = []
    for topic in sorted(bbc_dir.iterdir()):
        for i, f in enumerate(sorted(topic.glob("*.txt"))):
            body = f.read_text()
            rows.append(
                {"body": body, "topic": topic.name, "words": float(len(body.split())) + 0.5,
                 "tags": f"{topic.name};{'long' if len(body) > 2000 else 'short'}",
                 "split": "test" if i < 2 else "train"}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_tables_with_a_text_column_for_every_task(bbc_dir: Path, tmp_path: Path) -> None:
    df = _table(bbc_dir, tmp_path)
    csv, tsv, pq = tmp_path / "a.csv", tmp_path / "a.tsv", tmp_path / "a.parquet"
    df.to_csv(csv, index=False)
    df.to_csv(tsv, sep="\t", index=False)
    df.to_parquet(pq)
    for table in (csv, tsv, pq):
        data = load(table, text_column="body", label_column="topic")
        assert data.input_kind == "text" and len(data.class_names or []) == 5
        assert data.test is not None and len(data.test) == 10  # the split column decides
        assert data.test.texts is not None and data.test.texts[0] in set(df["body"])
        assert str(data.test.paths[0]).startswith(f"{table} row ")
    reg = load(csv, text_column="body", target_columns=["words"], task="regression")
    assert reg.task == "regression" and reg.train.targets.dtype == np.float32
    multi = load(csv, text_column="body", label_column="tags", task="multilabel")
    assert multi.task == "multilabel" and "long" in (multi.class_names or [])


def test_missing_text_column_names_the_columns(bbc_dir: Path, tmp_path: Path) -> None:
    _table(bbc_dir, tmp_path).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"no column 'text'.*Available columns: body"):
        load(tmp_path / "a.csv", text_column="text", label_column="topic")


def test_empty_and_undecodable_texts_are_listed(bbc_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    for topic in ("a", "b"):
        (root / topic).mkdir(parents=True)
        for i, f in enumerate(sorted((bbc_dir / "tech").glob("*.txt"))[:4]):
            (root / topic / f"{i}.txt").write_text(f.read_text())
    (root / "a" / "blank.txt").write_text("  \n\t ")
    (root / "b" / "latin.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load(root)
    reasons = {p.name: r for p, r in data.skipped}
    assert reasons["blank.txt"] == "empty text (only whitespace)"
    assert (
        "not valid utf-8" in reasons["latin.txt"] and "tried encoding utf-8" in reasons["latin.txt"]
    )
    assert sum("2 texts skipped" in str(w.message) for w in caught) == 1
    assert len(data.train) + len(data.val) + len(data.test or []) == 8
    with pytest.raises(DataError, match=r"blank.txt: empty text"):
        load(root, strict=True)
    (root / "a" / "blank.txt").unlink()
    with pytest.raises(DataError, match=r"latin.txt: not valid utf-8 text \(byte 0xe9"):
        load(root, strict=True)
    with pytest.raises(DataError, match=r"latin\.txt: not valid utf-8"):
        read_text(root / "b" / "latin.txt")


def test_blank_rows_in_a_table(tmp_path: Path) -> None:
    pd.DataFrame(
        {"review": ["good", "", "bad", "fine", "awful", "great", "poor", "nice"],
         "stars": ["5", "1", "1", "4", "1", "5", "1", "5"]}
    ).to_csv(tmp_path / "r.csv", index=False)  # fmt: skip
    with pytest.warns(UserWarning, match="1 texts skipped"):
        data = load(tmp_path / "r.csv", text_column="review", label_column="stars", test_fraction=0)
    assert [str(p) for p, _ in data.skipped] == [f"{tmp_path / 'r.csv'} row 2"]
    with pytest.raises(DataError, match="row 2: empty text"):
        load(tmp_path / "r.csv", text_column="review", label_column="stars", strict=True)


def test_text_keys_and_prediction_inputs(bbc_dir: Path, tmp_path: Path) -> None:
    assert text_key("a") == text_key("a") != text_key("a ")
    pd.DataFrame({"body": ["one", "two"]}).to_csv(tmp_path / "t.csv", index=False)
    names, texts = texts_to_predict([str(tmp_path / "t.csv")], ["zero"], "body")
    assert texts == ["zero", "one", "two"] and names[1] == f"{tmp_path / 't.csv'} row 1"
    with pytest.raises(DataError, match="pass --text-column"):
        texts_to_predict([str(tmp_path / "t.csv")], [], None)
    _, folder_texts = texts_to_predict([str(bbc_dir / "tech")], [], None)
    assert len(folder_texts) == 12
