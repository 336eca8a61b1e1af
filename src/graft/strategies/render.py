"""Plans as text: stage x group -> learning rate (0 = frozen), for ``graft fit --dry-run``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graft.strategies.base import Plan


def plan_rows(plan: Plan, trainable: Sequence[int] | None = None) -> list[dict[str, str]]:
    """One row per stage: name, epochs, BN policy, a learning rate per group, trainable params."""
    rows = []
    for i, stage in enumerate(plan.stages):
        row = {"stage": stage.name, "epochs": str(stage.epochs), "bn": stage.bn}
        for g, lr in zip(plan.groups, stage.group_lrs(), strict=True):
            row[g] = "0" if lr == 0 else f"{lr:.1e}"
        if trainable is not None:
            row["trainable"] = f"{trainable[i]:,}"
        rows.append(row)
    return rows


def plan_table(plan: Plan, trainable: Sequence[int] | None = None) -> str:
    """Stages as rows and layer groups as columns; learning rates, 0 = frozen."""
    rows = plan_rows(plan, trainable)
    cols = list(rows[0]) if rows else ["stage"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = [f"strategy: {plan.strategy}   (learning rate per layer group, 0 = frozen)"]
    lines.append("  ".join(c.ljust(widths[c]) for c in cols))
    lines.append("  ".join("-" * widths[c] for c in cols))
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)
