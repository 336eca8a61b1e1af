"""``graft.compare`` on a multi-label table works; a multi-task table gets a clear refusal."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

import graft
from graft.errors import ConfigError
from graft.testing import tiny_backbone


@pytest.fixture(scope="module")
def table(small_digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tags") / "t.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "tags", "value"])
        for p in sorted(small_digits.rglob("*.png")):
            d = int(p.parent.name)
            tags = [t for t, on in (("even", d % 2 == 0), ("big", d >= 5)) if on]
            w.writerow([str(p), ";".join(tags), float(d)])
    return out


def test_compare_multilabel(table: Path, tmp_path: Path) -> None:
    result = graft.compare(
        table,
        task="multilabel",
        label_column="tags",
        backbone=tiny_backbone(),
        arms=["feature_extraction", "scratch"],
        epochs=1,
        batch_size=16,
        image_size=32,
        budget="quick",
        cache_dir=str(tmp_path / "cache"),
        report=tmp_path / "report.html",
        log=lambda _: None,
    )
    assert result.metric == "micro_f1"
    assert [r["arm"] for r in result.rows] == ["feature_extraction", "scratch"]
    assert all(math.isfinite(r["test micro_f1"]) for r in result.rows)
    assert (tmp_path / "report.html").is_file()


def test_compare_refuses_multitask_clearly(table: Path) -> None:
    with pytest.raises(ConfigError, match="compare one task at a time"):
        graft.compare(
            table,
            task="multitask",
            target_columns=["tags:multilabel", "value"],
            backbone=tiny_backbone(),
            log=lambda _: None,
        )
