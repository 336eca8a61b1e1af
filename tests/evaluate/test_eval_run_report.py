"""``graft.fit(report=...)``: one self-contained HTML file with the stored numbers and plots."""

from __future__ import annotations

from pathlib import Path

import graft
from graft.evaluate.run_report import advice_lines
from graft.metrics import format_value
from graft.testing import tiny_backbone


def _fit(data: Path | str, tmp: Path, **options: object) -> graft.GraftModel:
    return graft.fit(
        data,
        backbone=tiny_backbone(),
        strategy="two_stage",
        strategy_options={"head_epochs": 1},
        epochs=1,
        batch_size=16,
        cache_dir=str(tmp / "cache"),
        progress=False,
        log=lambda _: None,
        report=tmp / "fit.html",
        **options,  # type: ignore[arg-type]
    )


def test_fit_report_shows_plan_metrics_and_plots(small_digits: Path, tmp_path: Path) -> None:
    model = _fit(small_digits, tmp_path)
    page = (tmp_path / "fit.html").read_text()
    assert "http://" not in page and "https://" not in page
    for title in ("Plan", "Metrics", "Learning curves", "Confusion matrix (test)"):
        assert f"<h2>{title}</h2>" in page
    assert "Per-class results (test)" in page and "Layer-group importance" in page
    assert page.count("data:image/png;base64,") == 3  # curves, confusion matrix, importance
    for split, values in model.info["metrics"].items():
        for name, value in values.items():  # the printed rounding of the stored numbers
            assert f'<td class="num">{format_value(value)}</td>' in page, (split, name)
    assert "top-2" in page  # the fine-tuning stage's name from the stored plan


def test_regression_report_has_fit_and_residual_plots(tmp_path: Path) -> None:
    from graft.data.digits import write_digits_table

    table = write_digits_table(tmp_path / "reg", per_class=6, regression=True)
    _fit(table, tmp_path, task="regression", target_columns=["value", "ink"])
    page = (tmp_path / "fit.html").read_text()
    assert "Predicted vs true, residuals: value (test)" in page
    assert "Predicted vs true, residuals: ink (test)" in page
    assert "Confusion matrix" not in page


def test_advisor_reasoning_in_any_recorded_form() -> None:
    assert advice_lines(None) == []
    assert advice_lines("use two_stage") == ["use two_stage"]
    recorded = {"strategy": "two_stage", "reasons": ["small data"], "lines": ["advice: x", " a"]}
    assert advice_lines(recorded) == ["advice: x", "a"]
    assert advice_lines({"strategy": "full", "reasons": ["big gap"]}) == [
        "advice: full",
        "big gap",
    ]


def test_advisor_reasoning_is_in_the_report(small_digits: Path) -> None:
    from graft.data import load as load_data
    from graft.evaluate.report import Report
    from graft.evaluate.run_report import add_model_sections

    data = load_data(small_digits)
    model = graft.fit(data, backbone=tiny_backbone(), epochs=1, dry_run=True, log=lambda _: None)
    model.info["advice"] = {"lines": ["advice: two_stage", "  <small> data, large gap"]}
    page = add_model_sections(Report("t"), model, data).to_html()
    assert "<h2>Advisor&#x27;s reasoning</h2>" in page
    assert "<li>&lt;small&gt; data, large gap</li>" in page
    assert "<h2>Plan</h2>" in page and "Learning curves" not in page  # nothing trained yet
