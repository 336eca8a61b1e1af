"""Plots: the axes, lines and marks each figure should have; aggregation; atomic saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from graft.errors import ConfigError, DataError
from graft.evaluate import curves

PNG = b"\x89PNG\r\n\x1a\n"


def _history() -> list[dict[str, Any]]:
    rows = []
    for index, (stage, n) in enumerate([("head", 3), ("top-2", 2)]):
        for epoch in range(1, n + 1):
            loss = 1.0 / (len(rows) + 1)
            rows.append(
                {"stage": stage, "stage_index": index, "epoch": epoch, "train_loss": loss}
                | {"val_loss": loss + 0.1, "val_accuracy": 1 - loss, "val_macro_f1": 0.9 - loss}
                | {"val_log_loss": loss, "best": len(rows) == 3}
            )
    return rows


def _labelled(ax: Any) -> list[str]:
    return [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]


def test_learning_curves_panels_lines_and_stage_marks() -> None:
    fig = curves.plot_learning_curves(_history())
    loss_ax, metric_ax = fig.axes
    assert _labelled(loss_ax) == ["train", "validation"]
    assert _labelled(metric_ax) == ["accuracy", "macro_f1"]  # log loss is not on this scale
    np.testing.assert_allclose(loss_ax.lines[0].get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    dashed = [ln for ln in loss_ax.lines if ln.get_linestyle() == "--"]
    assert [ln.get_xdata()[0] for ln in dashed] == [3.5]  # one boundary, between stages
    dotted = [ln for ln in loss_ax.lines if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in dotted] == [4]  # the kept epoch
    assert {t.get_text() for t in loss_ax.texts} == {"head", "top-2"}


def test_learning_curves_of_a_one_epoch_run_render(recwarn: pytest.WarningsRecorder) -> None:
    fig = curves.plot_learning_curves(_history()[:1])
    assert curves.figure_to_png_bytes(fig).startswith(PNG)
    assert not [w for w in recwarn if "constrained_layout" in str(w.message)]
    assert fig.axes[0].get_xlim() == (0.5, 1.5)


def test_learning_curves_chosen_metrics_and_loss_only() -> None:
    fig = curves.plot_learning_curves(_history(), metrics=["macro_f1"])
    assert _labelled(fig.axes[1]) == ["macro_f1"]
    bare = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2}]
    assert len(curves.plot_learning_curves(bare).axes) == 1
    with pytest.raises(ConfigError, match="val_bleu"):
        curves.plot_learning_curves(_history(), metrics=["bleu"])
    with pytest.raises(DataError, match="empty"):
        curves.plot_learning_curves([])


def test_confusion_matrix_shows_row_shares_and_counts() -> None:
    cm = np.array([[3, 1], [0, 4]])
    fig = curves.plot_confusion_matrix(cm, ["cat", "dog"])
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.75, 0.25], [0, 1]])
    assert sorted(t.get_text() for t in ax.texts) == ["1", "3", "4"]  # zeros left blank
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    with pytest.raises(DataError, match="3 class names"):
        curves.plot_confusion_matrix(cm, ["a", "b", "c"])


def test_regression_plot_identity_line_and_residuals() -> None:
    y = np.array([1.0, 2, 3, 4])
    pred = np.array([1.5, 2, 2.5, 5])
    fig = curves.plot_regression(y, pred, name="price")
    fit, res = fig.axes
    np.testing.assert_allclose(fit.collections[0].get_offsets(), np.c_[y, pred])
    np.testing.assert_allclose(res.collections[0].get_offsets(), np.c_[pred, pred - y])
    identity = fit.lines[0]
    np.testing.assert_allclose(identity.get_xdata(), identity.get_ydata())
    assert fit.get_xlabel() == "true price"


def _runs() -> list[dict[str, Any]]:
    rows = []
    for strategy, base in (("linear_probe", 0.6), ("fine_tune", 0.7)):
        for n in (10, 100, 1000):
            for seed in range(3):
                rows.append(
                    {"strategy": strategy, "n_train": n, "seed": seed}
                    | {"accuracy": base + 0.1 * np.log10(n) / 3 + 0.01 * seed}
                )
    return rows


def test_aggregate_runs_reference_values() -> None:
    rows = [
        {"strategy": "a", "fraction": 0.5, "acc": 0.6},
        {"strategy": "a", "fraction": 0.5, "acc": 0.8},
        {"strategy": "a", "fraction": 1.0, "acc": 0.9},
        {"strategy": "b", "fraction": 0.5, "acc": 0.4},
    ]
    out = curves.aggregate_runs(rows, metric="acc")
    assert out[0] == pytest.approx(
        {"strategy": "a", "fraction": 0.5, "mean": 0.7, "std": np.std([0.6, 0.8], ddof=1), "n": 2}
    )
    assert [(r["strategy"], r["fraction"], r["n"], r["std"]) for r in out[1:]] == [
        ("a", 1.0, 1, 0.0),
        ("b", 0.5, 1, 0.0),
    ]
    with pytest.raises(DataError, match="row 1 has no"):
        curves.aggregate_runs([rows[0], {"strategy": "a"}], metric="acc")


def test_data_efficiency_line_and_band_per_strategy() -> None:
    fig = curves.plot_data_efficiency(_runs())
    (ax,) = fig.axes
    assert sorted(_labelled(ax)) == ["fine_tune", "linear_probe"]
    assert len(ax.collections) == 2  # one ±std band each
    assert ax.get_xscale() == "log"  # 10..1000 spans two decades
    fine = next(ln for ln in ax.lines if ln.get_label() == "fine_tune")
    np.testing.assert_allclose(fine.get_xdata(), [10, 100, 1000])
    np.testing.assert_allclose(fine.get_ydata()[0], 0.7 + 0.1 / 3 + 0.01)
    narrow = [r | {"n_train": r["n_train"] / 10 + 50} for r in _runs()]
    assert curves.plot_data_efficiency(narrow).axes[0].get_xscale() == "linear"


def test_layer_importance_keeps_input_to_output_order() -> None:
    fig = curves.plot_layer_importance([("stem", 0.1), ("blocks.0", 0.5), ("head", 1.0)])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["stem", "blocks.0", "head"]
    assert [p.get_width() for p in ax.patches] == [0.1, 0.5, 1.0]
    assert ax.yaxis_inverted()  # the input end is drawn at the top
    with pytest.raises(DataError, match="finite"):
        curves.plot_layer_importance({"stem": float("nan")})


def test_plots_leave_global_rc_params_alone() -> None:
    before = matplotlib.rcParams["font.size"], matplotlib.rcParams["axes.spines.top"]
    curves.plot_layer_importance({"a": 1.0})
    assert (matplotlib.rcParams["font.size"], matplotlib.rcParams["axes.spines.top"]) == before


def test_png_bytes_and_atomic_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = curves.plot_layer_importance({"a": 1.0})
    assert curves.figure_to_png_bytes(fig).startswith(PNG)
    out = curves.save_figure(fig, tmp_path / "sub" / "imp.png")
    assert out.read_bytes().startswith(PNG)
    assert curves.save_figure(fig, tmp_path / "imp.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ConfigError, match="unknown image suffix"):
        curves.save_figure(fig, tmp_path / "imp.bmpx")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    old = out.read_bytes()
    with pytest.raises(OSError, match="disk full"):
        curves.save_figure(curves.plot_layer_importance({"b": 2.0}), out)
    assert out.read_bytes() == old  # the old file is intact and no temporary is left
    assert [p.name for p in out.parent.iterdir()] == ["imp.png"]
