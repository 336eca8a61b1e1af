"""Multi-label and multi-task tables: separators, per-column kinds, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graft.data import load
from graft.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def table(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = []
    for p in sorted(digits_dir.rglob("*.png")):
        d = int(p.parent.name)
        tags = "|".join(t for t, on in (("even", d % 2 == 0), ("big", d >= 5)) if on)
        rows.append({"path": str(p), "digit": d, "name": f"d{d}", "value": d / 2, "tags": tags})
    out = tmp_path_factory.mktemp("multi") / "t.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def test_multilabel_splits_cells_on_the_separator(table: Path) -> None:
    data = load(table, task="multilabel", label_column="tags", label_separator="|")
    assert data.task == "multilabel" and data.class_names == ["big", "even"]
    assert data.num_outputs == 2 and data.train.targets.shape[1] == 2
    assert set(np.unique(data.train.targets)) <= {0.0, 1.0}
    # digit 1 is odd and small: an empty cell means no label
    assert data.class_counts() == [int(v) for v in data.train.targets.sum(axis=0)]


def test_a_separator_alone_means_multilabel(table: Path) -> None:
    assert load(table, label_column="tags", label_separator="|").task == "multilabel"


def test_multitask_infers_kinds_and_takes_overrides(table: Path) -> None:
    data = load(table, task="multitask", target_columns=["name", "value", "digit:classification"])
    kinds = {t["name"]: t["kind"] for t in data.subtasks or []}
    assert kinds == {"name": "classification", "value": "regression", "digit": "classification"}
    assert data.train.targets.shape[1] == 3
    assert data.num_outputs == 10 + 1 + 10


def test_clear_errors(table: Path, digits_dir: Path) -> None:
    with pytest.raises(ConfigError, match="kind 'colour' is not one of"):
        load(table, task="multitask", target_columns=["digit:colour", "value"])
    with pytest.raises(DataError, match="at least 2 target columns"):
        load(table, task="multitask", target_columns=["value"])
    with pytest.raises(ConfigError, match="pass a table"):
        load(digits_dir, task="multilabel")
