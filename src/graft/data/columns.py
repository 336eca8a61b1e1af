"""Reading a table's columns: labels as text, numeric targets, with row-numbered errors.

Shared by the single-task readers (:mod:`graft.data.tables`) and the multi-label and multi-task
ones (:mod:`graft.data.multi`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def is_numeric(s: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


def whole_numbers(s: pd.Series) -> bool:
    v = s.dropna().to_numpy(dtype=np.float64)
    return bool(np.all(v == np.round(v)))


def row_name(table: Path, i: int) -> str:
    return f"{table} row {i + 1}"


def column_labels(df: pd.DataFrame, column: str, table: Path) -> list[str]:
    out: list[str] = []
    text = df.attrs.get("text")  # the CSV read as text (read_table), when there is one
    source = text.loc[df.index, column] if text is not None and column in text else df[column]
    for i, v in enumerate(source.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            raise DataError(
                f"{row_name(table, i)}: column {column!r} has no label; fill it or drop the row"
            )
        if isinstance(v, float) and v == round(v):
            v = int(v)  # a label column with blanks elsewhere reads as float: 3.0 means "3"
        out.append(str(v).strip())
    return out


def column_targets(df: pd.DataFrame, columns: list[str], table: Path) -> np.ndarray:
    import pandas as pd

    out = np.empty((len(df), len(columns)), dtype=np.float32)
    for j, c in enumerate(columns):
        values = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            i = int(bad[0])
            raw: Any = df[c].iloc[i]
            what = "is empty" if pd.isna(raw) else f"is not a finite number ({raw!r})"
            raise DataError(
                f"{row_name(table, i)}: column {c!r} {what} ({len(bad)} such rows); "
                "regression targets must be numbers"
            )
        huge = np.flatnonzero(np.abs(values) > np.finfo(np.float32).max)
        if len(huge):
            i = int(huge[0])
            raise DataError(
                f"{row_name(table, i)}: column {c!r} is {values[i]:g}, beyond float32's range "
                f"(±{np.finfo(np.float32).max:.3g}; {len(huge)} such rows); rescale the column"
            )
        out[:, j] = values
    return out
