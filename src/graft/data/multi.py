"""Tables with several labels per image (multi-label) or several target columns (multi-task).

Multi-label: one label column whose cells hold labels joined by a separator (default ``;``),
e.g. ``cat;outdoor``; an empty cell means no label. Targets are a 0/1 matrix, one column per
label, labels in sorted order.

Multi-task: several target columns, each a task of its own. A column's kind is inferred —
numeric → ``regression``, anything else → ``classification`` — or declared after a colon in
``target_columns``: ``species:classification,weight:regression,tags:multilabel``. Targets are
the tasks' columns side by side (a class index takes one column, a multi-label task one column
per label), described by ``Rows.subtasks`` (name, kind, columns, class or target names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from graft.data.columns import column_labels, column_targets, is_numeric
from graft.errors import ConfigError, DataError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

DEFAULT_SEPARATOR = ";"
SUBTASK_KINDS = ("classification", "regression", "multilabel")


def sort_names(names: set[str] | list[str]) -> list[str]:
    """Sorted label names; all-numeric names sort by value (2 before 10)."""
    try:
        return sorted(set(names), key=float)
    except ValueError:
        return sorted(set(names))


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def label_sets(df: pd.DataFrame, column: str, separator: str) -> list[list[str]]:
    """Each row's labels: the cell split on ``separator``, stripped (an empty cell: none)."""
    if not separator:
        raise ConfigError("label_separator must not be empty; e.g. ';' or '|'")
    out: list[list[str]] = []
    for v in df[column].tolist():
        if _blank(v):
            out.append([])
            continue
        if isinstance(v, float) and v == round(v):
            v = int(v)
        out.append([s.strip() for s in str(v).split(separator) if s.strip()])
    return out


def multilabel_targets(
    sets: list[list[str]], table: Path, column: str
) -> tuple[list[str], np.ndarray]:
    """Label names and the 0/1 target matrix of ``sets``."""
    names = sort_names([lab for s in sets for lab in s])
    if not names:
        raise DataError(f"{table}: column {column!r} holds no labels; fill it or pick another")
    index = {n: i for i, n in enumerate(names)}
    y = np.zeros((len(sets), len(names)), dtype=np.float32)
    for row, labels in enumerate(sets):
        y[row, [index[lab] for lab in labels]] = 1.0
    return names, y


def parse_columns(specs: list[str]) -> list[tuple[str, str | None]]:
    """``["a", "b:regression"]`` → ``[("a", None), ("b", "regression")]``."""
    out: list[tuple[str, str | None]] = []
    for spec in specs:
        name, _, kind = spec.partition(":")
        kind = kind.strip().lower().replace("-", "")
        if kind and kind not in SUBTASK_KINDS:
            raise ConfigError(
                f"target_columns: {spec!r}: kind {kind!r} is not one of "
                f"{', '.join(SUBTASK_KINDS)} (write NAME or NAME:KIND)"
            )
        out.append((name.strip(), kind or None))
    return out


def subtask(
    df: pd.DataFrame, table: Path, column: str, kind: str | None, separator: str
) -> tuple[dict[str, Any], np.ndarray]:
    """One target column as a multi-task subtask: its description and its target columns."""
    kind = kind or ("regression" if is_numeric(df[column]) else "classification")
    info: dict[str, Any] = {"name": column, "kind": kind}
    if kind == "regression":
        y = column_targets(df, [column], table)
        info.update(columns=1, target_names=[column])
        return info, y
    if kind == "multilabel":
        names, y = multilabel_targets(label_sets(df, column, separator), table, column)
        info.update(columns=len(names), class_names=names)
        return info, y
    labels = column_labels(df, column, table)
    names = sort_names(labels)
    if len(names) < 2:
        raise DataError(f"{table}: column {column!r} has fewer than 2 classes ({names})")
    index = {n: i for i, n in enumerate(names)}
    info.update(columns=1, class_names=names)
    return info, np.array([[index[lab]] for lab in labels], dtype=np.float32)


def multitask_targets(
    df: pd.DataFrame,
    table: Path,
    specs: list[tuple[str, str | None]],
    separator: str,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The subtasks of ``specs`` (resolved column names) and their side-by-side targets."""
    if len(specs) < 2:
        raise DataError(
            f"{table}: multitask needs at least 2 target columns, got {[n for n, _ in specs]}; "
            "pass --target-columns A,B (optionally A:classification,B:regression)"
        )
    subtasks, parts = [], []
    for name, kind in specs:
        info, y = subtask(df, table, name, kind, separator)
        subtasks.append(info)
        parts.append(y)
    return subtasks, np.concatenate(parts, axis=1).astype(np.float32)
