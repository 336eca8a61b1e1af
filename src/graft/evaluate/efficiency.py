"""Data efficiency: how each way of training fares as the training set grows.

Each run trains on a stratified random fraction of the training split and is scored on the
untouched validation and test splits, so every point of the curve is measured on the same
held-out data as the comparison itself. Several seeds per fraction give a mean and a spread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graft.errors import ConfigError

if TYPE_CHECKING:
    from graft.data.base import Dataset
    from graft.model import GraftModel

#: Trains one arm on a dataset with a seed and returns the fitted model.
FitArm = Callable[[str, "Dataset", int], "GraftModel"]


def subsample(data: Dataset, fraction: float, seed: int) -> Dataset:
    """The same dataset with a stratified random ``fraction`` of its training split.

    Validation and test splits are the very same objects, so scores stay comparable. Every
    class keeps at least one training example (classification).
    """
    from graft.data.splits import split_indices

    if not 0 < fraction <= 1:
        raise ConfigError(f"--fractions: each fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return data
    labels = data.train.targets if data.task == "classification" else None
    kept, _ = split_indices(len(data.train), labels, 1.0 - fraction, seed, data.class_names)
    return replace(data, train=data.train.subset(kept))


def score_of(model: GraftModel, metric: str) -> tuple[str, float]:
    """The split (``test`` when there is one, else ``val``) and the metric's value on it."""
    metrics = model.record.metrics
    split = "test" if "test" in metrics else "val"
    return split, float(metrics[split][metric])


def efficiency_runs(
    data: Dataset,
    arms: Sequence[str],
    fractions: Sequence[float],
    seeds: int,
    fit_arm: FitArm,
    *,
    metric: str,
    done: dict[str, GraftModel] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train every arm on every fraction with ``seeds`` subsets; one row per run.

    Args:
        data: the comparison's dataset (its validation and test splits score every run).
        arms: arm names, passed to ``fit_arm``.
        fractions: shares of the training split in (0, 1].
        seeds: subsets per fraction; subset ``s`` is drawn and trained with seed ``s``.
        fit_arm: ``fit_arm(arm, dataset, seed) -> model``.
        metric: the metric recorded (from ``model.info["metrics"]``).
        done: models already trained on the full training split with seed 0, reused for the
            point (fraction 1, seed 0) instead of training again.

    Returns:
        Rows ``{"strategy", "fraction", "n_train", "seed", "split", metric}``, the input of
        :func:`~graft.evaluate.curves.plot_data_efficiency`.
    """
    rows: list[dict[str, Any]] = []
    for fraction in sorted(fractions):
        for seed in range(seeds):
            subset = subsample(data, fraction, seed)
            for arm in arms:
                reuse = (done or {}).get(arm) if fraction == 1 and seed == 0 else None
                if reuse is None:
                    log(f"curve: {arm} on {len(subset.train)} training examples (seed {seed})")
                model = reuse if reuse is not None else fit_arm(arm, subset, seed)
                split, value = score_of(model, metric)
                rows.append(
                    {"strategy": arm, "fraction": fraction, "n_train": len(subset.train)}
                    | {"seed": seed, "split": split, metric: value}
                )
    return rows
