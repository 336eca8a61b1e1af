"""Shared by the evaluation tests: small real digits and one comparison of every arm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import graft
import graft.workflows.fit
from graft.data.base import Dataset
from graft.evaluate.arms import ARMS
from graft.evaluate.compare import Comparison
from graft.testing import tiny_backbone


@pytest.fixture(scope="session")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graft.data.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("d") / "digits", per_class=6, seed=1)


@pytest.fixture(scope="session")
def run(
    small_digits: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Comparison, list[Dataset], Path]:
    """One comparison with every registered arm and a data-efficiency curve; fits recorded."""
    seen: list[Dataset] = []
    real_fit = graft.workflows.fit.fit

    def spy(data: Any, **kwargs: Any) -> Any:
        seen.append(data)
        return real_fit(data, **kwargs)

    out = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graft.workflows.fit, "fit", spy)
        result = graft.compare(
            small_digits,
            backbone=tiny_backbone(),
            arms=ARMS.names(),  # the contract: every arm that reads images trains, has a row
            epochs=2,
            batch_size=16,
            image_size=32,
            fractions=[0.5, 1.0],
            seeds=1,
            curve_arms=["feature_extraction"],
            budget="quick",
            cache_dir=str(out / "cache"),
            report=out / "report.html",
            log=lambda _: None,
        )
    return result, seen, out / "report.html"
