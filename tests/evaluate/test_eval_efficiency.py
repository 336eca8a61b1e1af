"""Data-efficiency runs: stratified subsets of the training split, the same held-out splits."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from graft.data import load as load_data
from graft.data.base import Dataset
from graft.errors import ConfigError
from graft.evaluate.efficiency import efficiency_runs, subsample
from graft.record import RunRecord


@pytest.fixture(scope="module")
def data(digits_dir: Path) -> Dataset:
    return load_data(digits_dir)


def test_subsample_keeps_held_out_splits_and_every_class(data: Dataset) -> None:
    part = subsample(data, 0.25, seed=0)
    assert part.val is data.val and part.test is data.test
    assert set(part.train.paths) < set(data.train.paths)
    assert abs(len(part.train) - 0.25 * len(data.train)) <= 10
    assert set(np.unique(part.train.targets)) == set(np.unique(data.train.targets))


def test_subsample_is_seeded(data: Dataset) -> None:
    a, b = subsample(data, 0.5, seed=0), subsample(data, 0.5, seed=0)
    c = subsample(data, 0.5, seed=1)
    assert a.train.paths == b.train.paths
    assert a.train.paths != c.train.paths
    assert subsample(data, 1.0, seed=3) is data


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.1])
def test_fraction_out_of_range_is_an_error(data: Dataset, fraction: float) -> None:
    with pytest.raises(ConfigError, match="--fractions"):
        subsample(data, fraction, seed=0)


def test_runs_cover_every_arm_fraction_and_seed(data: Dataset) -> None:
    calls: list[tuple[str, int, int]] = []

    def fit_arm(arm: str, subset: Dataset, seed: int) -> Any:
        calls.append((arm, len(subset.train), seed))
        score = len(subset.train) / len(data.train) + (0.01 if arm == "b" else 0.0)
        return SimpleNamespace(record=RunRecord(metrics={"test": {"accuracy": score}}))

    done = {"a": SimpleNamespace(record=RunRecord(metrics={"test": {"accuracy": 0.5}}))}
    rows = efficiency_runs(
        data, ["a", "b"], [1.0, 0.5], 2, fit_arm, metric="accuracy", done=done, log=lambda _: None
    )  # type: ignore[arg-type]
    assert len(rows) == 2 * 2 * 2
    assert [r["fraction"] for r in rows[:4]] == [0.5] * 4  # sorted by fraction
    assert ("a", len(data.train), 0) not in calls  # the comparison's own run is reused
    reused = next(r for r in rows if (r["strategy"], r["fraction"], r["seed"]) == ("a", 1.0, 0))
    assert reused["accuracy"] == 0.5 and reused["split"] == "test"
    assert len(calls) == 7
