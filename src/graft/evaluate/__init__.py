"""Evaluation: metrics on NumPy outputs, plots of a run, and a self-contained HTML report.

scikit-learn and matplotlib are imported inside the functions that use them, so importing
this package stays cheap.
"""

from __future__ import annotations

from graft.evaluate.curves import (
    aggregate_runs,
    figure_to_png_bytes,
    plot_confusion_matrix,
    plot_data_efficiency,
    plot_layer_importance,
    plot_learning_curves,
    plot_regression,
    save_figure,
)
from graft.evaluate.report import Report
from graft.metrics import (
    METRICS,
    classification_metrics,
    confusion,
    format_metrics,
    format_value,
    metric_direction,
    multilabel_metrics,
    per_class_report,
    regression_metrics,
)

__all__ = [
    "METRICS",
    "Report",
    "aggregate_runs",
    "classification_metrics",
    "confusion",
    "figure_to_png_bytes",
    "format_metrics",
    "format_value",
    "metric_direction",
    "multilabel_metrics",
    "per_class_report",
    "plot_confusion_matrix",
    "plot_data_efficiency",
    "plot_layer_importance",
    "plot_learning_curves",
    "plot_regression",
    "regression_metrics",
    "save_figure",
]
