"""``graft compare --folds K``: the comparison repeated on K random stratified splits.

A small dataset's single test split is a few dozen images: one split's verdict is mostly luck.
Each fold reloads the data with another split seed (stratified train/val/test, as ``load`` does)
and runs every arm with the same budget; the table reports each arm's mean over the folds with its
standard deviation, and the verdict's paired bootstrap pools the test examples of all folds (each
arm is scored on the same examples in each fold, so the pairing holds).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.errors import ConfigError
from graft.evaluate.compare import Comparison, add_intervals, compare, make_verdict
from graft.evaluate.noise import seed_spread
from graft.evaluate.run_report import write_compare_report

if TYPE_CHECKING:
    from graft.data.base import Dataset


def compare_folds(
    data: str | Path | Dataset,
    *,
    folds: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
    **options: Any,
) -> Comparison:
    """Run :func:`~graft.evaluate.compare.compare` on ``folds`` splits; mean ± spread per arm.

    Args:
        data: an image folder or table (a loaded Dataset has one split only: not allowed).
        folds: number of repeated stratified splits (seeds ``seed`` .. ``seed + folds - 1``).
        seed: the first split seed.
        log: where progress lines go.
        **options: everything else :func:`compare` takes; ``report`` is written for the last
            fold's models with the pooled table and verdict.
    """
    if folds < 2:
        raise ConfigError(f"--folds {folds}: need at least 2 splits (or leave it out)")
    if not isinstance(data, str | Path):
        raise ConfigError("--folds reloads the data with other splits: pass a folder or a table")
    report = options.pop("report", None)
    runs = []
    for k in range(folds):
        log(f"fold {k + 1}/{folds} (split seed {seed + k})")
        runs.append(compare(data, seed=seed + k, log=log, report=None, **options))
    return _pooled(runs, report)


def _pooled(runs: list[Comparison], report: str | Path | None) -> Comparison:
    """One Comparison from the folds: mean metrics, spread over folds, pooled verdict."""
    last = runs[-1]
    metric = last.metric
    rows = []
    for i, row in enumerate(last.rows):
        pooled = {k: v for k, v in row.items() if k != "95% interval"}
        for name, value in row.items():
            if isinstance(value, float):
                values = [r.rows[i][name] for r in runs if r.rows[i].get(name) is not None]
                pooled[name] = seed_spread(values)[0] if values else None
        key = next(k for k in row if k.endswith(f" {metric}"))
        values = [r.rows[i][key] for r in runs if r.rows[i].get(key) is not None]
        pooled = _insert_after(pooled, key, "spread", seed_spread(values)[1] if values else None)
        rows.append(pooled)
    per_example = _concat([r.per_example for r in runs])
    add_intervals(rows, per_example, metric)
    verdict, best = make_verdict(rows, metric, per_example)
    verdict = f"Over {len(runs)} splits: {verdict}"
    result = Comparison(
        rows, verdict, best, metric, last.budget, last.dataset, last.models, backbone=last.backbone
    )
    result.seconds = round(sum(r.seconds for r in runs), 1)
    result.calibration, result.per_example = last.calibration, per_example
    if report is not None:
        write_compare_report(result, report)
    return result


def _insert_after(row: dict[str, Any], key: str, new: str, value: Any) -> dict[str, Any]:
    cells = list(row.items())
    at = [k for k, _ in cells].index(key) + 1
    cells.insert(at, (new, value))
    return dict(cells)


def _concat(parts: list[dict[str, np.ndarray] | None]) -> dict[str, np.ndarray] | None:
    """Per-arm per-example values of every fold, end to end (None if any fold lacks them)."""
    if not parts or any(p is None for p in parts):
        return None
    arms = set.intersection(*(set(p) for p in parts if p is not None))
    return {a: np.concatenate([p[a] for p in parts if p is not None]) for a in sorted(arms)}
