"""What every adaptation records and reports: ``model.info["adaptation"]`` and ``target_*``.

A labeled target set (``target_eval``) is only ever evaluated: its metrics are added to every
supervised epoch's row as ``target_*`` and reported at the end, never used to train or to
select weights. :class:`TargetReport` is the extension for a target report without adaptation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.data.base import Dataset, Samples
    from graft.model import GraftModel


@dataclass(eq=False)
class AdaptationRecord:
    """The checked request of one fit: method, options, target images, where it acts.

    Args:
        method: the registered method (None: a target report only).
        options: the method's options (recorded as given and defaulted).
        unlabeled: where the target images came from.
        n_unlabeled: how many target images.
        active_stages: the stages (or the pretext step) where the method acts.
        target_eval: labeled target images, only to report.
        log: where to write per-epoch and final reports.
        model: the model trained (the per-epoch target report evaluates it).
    """

    method: str | None
    options: dict[str, Any]
    unlabeled: str
    n_unlabeled: int
    active_stages: list[str]
    target_eval: Samples | None = None
    log: Callable[[str], None] = print
    model: GraftModel | None = None

    def on_epoch(self, row: dict[str, Any]) -> None:
        """Log a supervised epoch's ``train_adapt_*`` metrics, then add its ``target_*`` ones.

        Only reads the model (in inference mode); the loop re-seeds every epoch, so a run with
        the report trains exactly like a run without it.
        """
        if row.get("kind") == "pretext":
            return
        prefix = "train_adapt_"
        shown = [f"{k[len(prefix) :]} {v:.4f}" for k, v in row.items() if k.startswith(prefix)]
        if shown and self.method is not None:
            self.log(f"  {self.method}: {'  '.join(shown)}")
        if self.target_eval is None or self.model is None:
            return
        metrics = self.model.evaluate(self.target_eval)
        row.update({f"target_{k}": v for k, v in metrics.items()})
        first = "  ".join(f"{k} {v:.4f}" for k, v in list(metrics.items())[:2])
        self.log(f"  target (report only): {first}")

    def finish(self, model: GraftModel, **done: Any) -> dict[str, Any]:
        """Store the record (and the final target metrics) in ``model.info["adaptation"]``."""
        info: dict[str, Any] = {
            "method": self.method,
            "options": self.options,
            "unlabeled": self.unlabeled,
            "n_unlabeled": self.n_unlabeled,
            "active_stages": self.active_stages,
            **done,
        }
        if self.target_eval is not None:
            from graft.metrics import format_metrics

            metrics = model.evaluate(self.target_eval)
            info["target_eval"] = {"n": len(self.target_eval), "metrics": metrics}
            self.log("target metrics (labels used only to report):\n" + format_metrics(metrics))
        model.info["adaptation"] = info
        return info


class TargetReport(ExtensionBase):
    """A labeled target set reported every epoch and at the end, without adaptation."""

    name = "adapt"

    def __init__(self, record: AdaptationRecord) -> None:
        self.record = record

    def on_epoch(self, row: dict[str, Any]) -> None:
        """Add the ``target_*`` metrics to a supervised epoch's row."""
        self.record.on_epoch(row)

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """``model.info["adaptation"]`` with ``method: None`` and the target metrics."""
        del dataset, cfg
        return self.record.finish(model)


__all__ = ["AdaptationRecord", "TargetReport"]
