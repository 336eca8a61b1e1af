"""A total epoch budget split among a plan's stages: one rule for ``graft compare`` and ``auto``.

``graft fit --epochs`` counts epochs per stage; a comparison (and ``Auto(total_epochs=N)``)
gives every contender the same number of passes over the training set, all its stages together,
so that no plan wins by training longer.
"""

from __future__ import annotations

from typing import Any


def split_epochs(
    strategy: str, options: dict[str, Any], total: int, *, stages: int
) -> tuple[int, dict[str, Any]]:
    """``epochs`` (per stage) and the strategy's options so its stages add up to ``total``.

    The total is split evenly among the stages, never exceeding it: two-stage gives the head
    stage the remainder (its two stages add up to the total exactly), progressive unfreezes
    fewer groups when there are fewer epochs than stages. A one-stage plan gets the total.

    Args:
        strategy: the registered strategy name (``two_stage``, ``progressive``, ...).
        options: its other options (returned with the epoch options added).
        total: epochs of all stages together (at least 1).
        stages: how many stages the plan has (two-stage: 2, progressive: 1 + max_groups).

    Example:
        >>> split_epochs("two_stage", {"top": 2}, 7, stages=2)
        (3, {'top': 2, 'head_epochs': 4})
    """
    if total < 1:
        raise ValueError(f"an epoch budget is at least 1 epoch, got {total}")
    stages = max(1, min(stages, total))
    per = max(1, total // stages)
    out = dict(options)
    if strategy == "two_stage":
        out["head_epochs"] = total - per
    elif strategy == "progressive":
        out["stage_epochs"] = per
        out["max_groups"] = stages - 1
    elif strategy == "auto":  # the advisor splits the total among the stages it chooses
        out["total_epochs"] = total
        per = total
    return per, out
