"""CSV/TSV and Parquet tables: one row per image, a path column and label or target columns.

Paths are relative to the table's folder (absolute paths also work). Rows are numbered from 1
in messages, not counting the header (so CSV row ``n`` is on line ``n + 1``).

Task inference when ``task`` is None (pass it to be explicit):

* ``label_column`` given → classification; ``target_columns`` given → regression;
* else a ``label``/``class``/``target`` column that is non-numeric → classification; that holds
  fractional numbers → regression; that holds whole numbers → classification when it is named
  ``label`` or ``class``, otherwise ambiguous (pass ``task``);
* no such column: regression on the remaining numeric columns when any holds fractional numbers.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.data.base import Task
from graft.data.columns import column_labels, column_targets, is_numeric, row_name, whole_numbers
from graft.data.images import SPLIT_NAMES
from graft.data.multi import (
    DEFAULT_SEPARATOR,
    label_sets,
    multilabel_targets,
    multitask_targets,
    parse_columns,
)
from graft.errors import ConfigError, DataError, listing

if TYPE_CHECKING:
    import pandas as pd

TABLE_EXTENSIONS = frozenset({".csv", ".tsv", ".parquet", ".pq"})
PATH_COLUMNS = ("path", "file", "filename", "image", "filepath")
LABEL_COLUMNS = ("label", "class", "target")


@dataclass
class Rows:
    """What a folder or table holds, before images are checked and splits are made."""

    task: Task
    paths: list[Path]
    labels: list[str] | None
    targets: np.ndarray | None
    splits: list[str | None]
    target_names: list[str] | None
    class_names: list[str] | None = None
    subtasks: list[dict[str, Any]] | None = field(default=None)
    texts: list[str] | None = None  # text tables: each row's text


def read_table(table: Path) -> pd.DataFrame:
    """The table as a DataFrame; :class:`DataError` if it cannot be read or has no rows."""
    import pandas as pd

    suffix = table.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(table)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            df = pd.read_csv(table, sep=sep)
            # Labels keep their text ("01" and "1" are two classes): column_labels reads these.
            df.attrs["text"] = pd.read_csv(table, sep=sep, dtype=str)
    except Exception as e:  # pandas/pyarrow raise many types for a damaged file
        raise DataError(f"{table}: cannot read the table ({type(e).__name__}: {e})") from e
    if len(df) == 0:
        raise DataError(f"{table}: the table has no rows; add one row per image")
    return df


def find_column(df: pd.DataFrame, name: str, table: Path, option: str) -> str:
    """The column called ``name`` (case-insensitive), or :class:`DataError` with close matches."""
    cols = [str(c) for c in df.columns]
    for c in cols:
        if c == name or c.lower() == name.lower():
            return c
    close = difflib.get_close_matches(name, cols, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise DataError(
        f"{table}: no column {name!r} ({option}).{hint} Available columns: {', '.join(cols)}"
    )


def _default_column(df: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): str(c) for c in df.columns}
    return next((lower[c] for c in candidates if c in lower), None)


def infer_task(
    df: pd.DataFrame,
    table: Path,
    *,
    task: str | None,
    label_column: str | None,
    target_columns: list[str] | None,
    reserved: set[str],
) -> tuple[Task, list[str]]:
    """The task and its columns: ``[label]`` for classification, the targets for regression."""
    if task not in (None, "classification", "regression"):
        raise ConfigError(f"task must be 'classification' or 'regression', got {task!r}")
    if label_column and target_columns:
        raise ConfigError("pass label_column (classification) or target_columns (regression)")
    if label_column or task == "classification":
        if task == "regression":
            raise ConfigError("label_column is for classification; use target_columns")
        name = label_column or _default_column(df, LABEL_COLUMNS)
        if name is None:
            cols = ", ".join(str(c) for c in df.columns)
            raise DataError(
                f"{table}: no label column ({', '.join(LABEL_COLUMNS)}); "
                f"pass --label-column NAME. Available columns: {cols}"
            )
        return "classification", [find_column(df, name, table, "label_column")]
    if target_columns or task == "regression":
        names = target_columns or _numeric_columns(df, reserved)
        if not names:
            raise DataError(f"{table}: no numeric columns to regress on; pass --target-columns")
        return "regression", [find_column(df, n, table, "target_columns") for n in names]
    return _guess_task(df, table, reserved)


def _numeric_columns(df: pd.DataFrame, reserved: set[str]) -> list[str]:
    return [str(c) for c in df.columns if str(c) not in reserved and is_numeric(df[c])]


def _guess_task(df: pd.DataFrame, table: Path, reserved: set[str]) -> tuple[Task, list[str]]:
    name = _default_column(df, LABEL_COLUMNS)
    if name is not None:
        col = df[name]
        if not is_numeric(col) or (whole_numbers(col) and name.lower() != "target"):
            return "classification", [name]
        if not whole_numbers(col):
            return "regression", [name]
        raise DataError(
            f"{table}: column {name!r} holds whole numbers, which may be classes or values; "
            "pass --task classification or --task regression"
        )
    numeric = _numeric_columns(df, reserved)
    if numeric and not all(whole_numbers(df[c]) for c in numeric):
        return "regression", numeric
    raise DataError(
        f"{table}: cannot tell the task; pass --label-column NAME (classification) or "
        f"--target-columns A,B (regression). Columns: {', '.join(str(c) for c in df.columns)}"
    )


def _paths(df: pd.DataFrame, column: str, table: Path) -> list[Path]:
    out: list[Path] = []
    missing: list[str] = []
    for i, value in enumerate(df[column].tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value) == "":
            raise DataError(f"{row_name(table, i)}: column {column!r} is empty; give an image path")
        p = Path(str(value)).expanduser()
        p = p if p.is_absolute() else table.parent / p
        if not p.is_file():
            missing.append(f"{row_name(table, i)}: {value} not found (looked for {p})")
        out.append(p)
    if missing:
        raise DataError(
            f"{len(missing)} image files named in the table are missing "
            "(paths are relative to the table's folder):" + listing(missing, limit=5)
        )
    return out


def _splits(df: pd.DataFrame, table: Path) -> list[str | None]:
    column = _default_column(df, ("split",))
    if column is None:
        return [None] * len(df)
    out: list[str | None] = []
    for i, v in enumerate(df[column].tolist()):
        key = str(v).strip().lower()
        if key not in SPLIT_NAMES:
            raise DataError(
                f"{row_name(table, i)}: split {v!r} is not one of train, val (valid, validation), test"
            )
        out.append(SPLIT_NAMES[key])
    return out


def read_rows(
    table: Path,
    *,
    task: str | None = None,
    path_column: str | None = None,
    label_column: str | None = None,
    target_columns: list[str] | None = None,
    label_separator: str | None = None,
    text_column: str | None = None,
) -> Rows:
    """Read ``table`` into paths, labels or targets, and splits (an optional ``split`` column).

    ``task="multilabel"`` (implied by a ``label_separator`` when ``task`` is None) and
    ``task="multitask"`` are read by :mod:`graft.data.multi`. With ``text_column`` the rows are
    texts (``Rows.texts``) and each row's "path" names it (``table.csv:row N``).
    """
    df = read_table(table)
    if text_column is not None:
        text_column = find_column(df, text_column, table, "text_column")
        path_column = text_column
    elif path_column is None:
        path_column = _default_column(df, PATH_COLUMNS)
        if path_column is None:
            cols = ", ".join(str(c) for c in df.columns)
            raise DataError(
                f"{table}: no path column ({', '.join(PATH_COLUMNS)}); "
                f"pass --path-column NAME. Available columns: {cols}"
            )
    path_column = find_column(df, path_column, table, "path_column")
    split_column = _default_column(df, ("split",))
    reserved = {path_column} | ({split_column} if split_column else set())
    if task is None and label_separator is not None:
        task = "multilabel"
    if task in ("multilabel", "multitask"):
        rows = _multi_rows(df, table, task, label_column, target_columns, reserved)
        sep = label_separator if label_separator is not None else DEFAULT_SEPARATOR
        out: Rows = rows(_items(df, path_column, table, text_column), _splits(df, table), sep)
        return _with_texts(out, df, text_column)
    kind, columns = infer_task(
        df,
        table,
        task=task,
        label_column=label_column,
        target_columns=target_columns,
        reserved=reserved,
    )
    paths = _items(df, path_column, table, text_column)
    splits = _splits(df, table)
    if kind == "classification":
        rows = Rows(kind, paths, column_labels(df, columns[0], table), None, splits, None)
    else:
        rows = Rows(kind, paths, None, column_targets(df, columns, table), splits, columns)
    return _with_texts(rows, df, text_column)


def _items(df: pd.DataFrame, column: str, table: Path, text_column: str | None) -> list[Path]:
    """Image paths, or for a text table a name per row (``table.csv:row N``)."""
    if text_column is None:
        return _paths(df, column, table)
    return [Path(row_name(table, i)) for i in range(len(df))]


def _with_texts(rows: Rows, df: pd.DataFrame, text_column: str | None) -> Rows:
    if text_column is not None:
        rows.texts = ["" if _missing(v) else str(v) for v in df[text_column].tolist()]
    return rows


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _multi_rows(
    df: pd.DataFrame,
    table: Path,
    task: str,
    label_column: str | None,
    target_columns: list[str] | None,
    reserved: set[str],
) -> Any:
    """A function (paths, splits, separator) -> Rows for a multi-label or multi-task table."""
    if task == "multilabel":
        if target_columns:
            raise ConfigError("multilabel reads one label column; pass label_column, not targets")
        name = label_column or _default_column(df, (*LABEL_COLUMNS, "labels", "tags"))
        if name is None:
            cols = ", ".join(str(c) for c in df.columns)
            raise DataError(
                f"{table}: no label column (label, class, target, labels, tags); "
                f"pass --label-column NAME. Available columns: {cols}"
            )
        column = find_column(df, name, table, "label_column")

        def multilabel(paths: list[Path], splits: list[str | None], sep: str) -> Rows:
            names, y = multilabel_targets(label_sets(df, column, sep), table, column)
            return Rows("multilabel", paths, None, y, splits, None, class_names=names)

        return multilabel
    if label_column:
        raise ConfigError("multitask reads target_columns (NAME or NAME:KIND), not label_column")
    specs = parse_columns(target_columns or [str(c) for c in df.columns if str(c) not in reserved])
    specs = [(find_column(df, n, table, "target_columns"), k) for n, k in specs]

    def multitask(paths: list[Path], splits: list[str | None], sep: str) -> Rows:
        subtasks, y = multitask_targets(df, table, specs, sep)
        names = [str(t["name"]) for t in subtasks]
        return Rows("multitask", paths, None, y, splits, names, subtasks=subtasks)

    return multitask
