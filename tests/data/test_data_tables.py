"""CSV/TSV/Parquet tables: relative paths, task inference, split column, bad rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graft.data import load
from graft.data.digits import write_digits_table
from graft.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits_table(tmp_path_factory.mktemp("tab"), per_class=6, seed=0)


def _write(table: Path, df: pd.DataFrame, name: str) -> Path:
    out = table.parent / name
    df.to_csv(out, index=False)
    return out


def test_csv_paths_are_relative_to_the_table(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the table's folder
    data = load(table, val_fraction=0.0, test_fraction=0.0)
    assert data.task == "classification" and data.class_names == [str(d) for d in range(10)]
    assert len(data.train) == 60 and all(p.is_file() for p in data.train.paths)
    assert data.train.paths[0] == table.parent / "images" / "0" / data.train.paths[0].name


def test_absolute_paths_and_named_columns(table: Path) -> None:
    df = pd.read_csv(table)
    df = pd.DataFrame({"img": [str(table.parent / p) for p in df["path"]], "kind": df["label"]})
    other = _write(table, df, "abs.csv")
    data = load(other, path_column="img", label_column="kind", test_fraction=0.0)
    assert data.class_names == [str(d) for d in range(10)] and len(data.train) + len(data.val) == 60


@pytest.mark.parametrize("name", ["digits.parquet", "digits.tsv"])
def test_parquet_and_tsv_round_trip(table: Path, name: str) -> None:
    other = write_digits_table(table.parent, per_class=6, seed=0, name=name)
    a, b = load(table, seed=1), load(other, seed=1)
    assert a.train.paths == b.train.paths and a.val.paths == b.val.paths
    np.testing.assert_array_equal(a.train.targets, b.train.targets)
    assert a.class_names == b.class_names


def test_regression_targets_are_float32_n_by_t(tmp_path: Path) -> None:
    table = write_digits_table(tmp_path, per_class=4, regression=True)
    data = load(table, val_fraction=0.0, test_fraction=0.0)  # inferred: fractional targets
    assert data.task == "regression" and data.target_names == ["value", "ink"]
    assert data.train.targets.dtype == np.float32 and data.train.targets.shape == (40, 2)
    df = pd.read_csv(table)
    row = df.index[df["path"] == str(data.train.paths[0].relative_to(tmp_path))][0]
    np.testing.assert_allclose(data.train.targets[0], df.loc[row, ["value", "ink"]], rtol=1e-6)
    assert data.num_outputs == 2
    one = load(table, target_columns=["ink"], val_fraction=0.25, test_fraction=0.0)
    assert one.train.targets.shape == (30, 1) and one.target_names == ["ink"]


def test_split_column_is_honored(table: Path) -> None:
    df = pd.read_csv(table)
    df["split"] = (["train"] * 4 + ["VAL"] + ["test"]) * 10
    other = _write(table, df, "split.csv")
    data = load(other)
    assert data.test is not None
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 10)
    wanted = {str(table.parent / p) for p in df.loc[df["split"] == "test", "path"]}
    assert {str(p) for p in data.test.paths} == wanted


def test_missing_file_names_the_row(table: Path) -> None:
    df = pd.read_csv(table)
    df.loc[2, "path"] = "images/0/gone.png"
    with pytest.raises(DataError, match=r"row 3: images/0/gone\.png not found"):
        load(_write(table, df, "missing.csv"))


def test_unknown_column_lists_columns_and_suggests(table: Path) -> None:
    with pytest.raises(DataError, match=r"no column 'lable'.*Did you mean 'label'.*path, label"):
        load(table, label_column="lable")
    with pytest.raises(DataError, match="no column 'pth'"):
        load(table, path_column="pth")


@pytest.mark.parametrize(
    ("bad", "match"), [(np.nan, "is empty"), ("abc", "is not a finite number")]
)
def test_bad_regression_targets_name_row_and_column(table: Path, bad: object, match: str) -> None:
    df = pd.read_csv(table)
    df["size"] = np.linspace(0.5, 3.5, len(df)).astype(object)
    df.loc[4, "size"] = bad
    with pytest.raises(DataError, match=rf"row 5: column 'size' {match}"):
        load(_write(table, df, "bad.csv"), task="regression", target_columns=["size"])


def test_empty_label_names_the_row(table: Path) -> None:
    df = pd.read_csv(table).astype({"label": object})
    df.loc[7, "label"] = None
    with pytest.raises(DataError, match="row 8: column 'label' has no label"):
        load(_write(table, df, "nolabel.csv"))


def test_bad_split_value_names_the_row(table: Path) -> None:
    df = pd.read_csv(table)
    df["split"] = "train"
    df.loc[1, "split"] = "holdout"
    with pytest.raises(DataError, match="row 2: split 'holdout'"):
        load(_write(table, df, "badsplit.csv"))


def test_whole_number_target_asks_for_task(table: Path) -> None:
    df = pd.read_csv(table).rename(columns={"label": "target"})
    other = _write(table, df, "ambiguous.csv")
    with pytest.raises(DataError, match="--task classification or --task regression"):
        load(other)
    assert load(other, task="classification").class_names == [str(d) for d in range(10)]
    reg = load(other, task="regression", test_fraction=0.0)
    assert reg.target_names == ["target"] and reg.train.targets.dtype == np.float32


def test_string_labels_classify(table: Path) -> None:
    df = pd.read_csv(table)
    df["label"] = np.where(df["label"] % 2 == 0, "even", "odd")
    data = load(_write(table, df, "names.csv"))
    assert data.class_names == ["even", "odd"]


def test_table_mistakes(table: Path) -> None:
    empty = table.parent / "empty.csv"
    empty.write_text("path,label\n")
    with pytest.raises(DataError, match="no rows"):
        load(empty)
    df = pd.read_csv(table).rename(columns={"path": "where"})
    with pytest.raises(DataError, match=r"no path column.*--path-column"):
        load(_write(table, df, "nopath.csv"))
    with pytest.raises(ConfigError, match="target_columns"):
        load(table, task="regression", label_column="label")
    with pytest.raises(ConfigError, match="task must be"):
        load(table, task="segmentation")
