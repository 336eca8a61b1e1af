"""The HTML report: self-contained, escaped, same numbers as the terminal, written atomically."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graft.errors import ConfigError
from graft.evaluate import curves
from graft.evaluate.report import Report
from graft.metrics import classification_metrics, format_metrics, format_value

Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
P = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.2, 0.6],
        [0.3, 0.4, 0.3],
        [0.2, 0.5, 0.3],
        [0.1, 0.1, 0.8],
        [0.6, 0.3, 0.1],
        [0.5, 0.3, 0.2],
    ]
)
PLAN_ROWS = [
    {"stage": "head", "epochs": "3", "bn": "frozen", "stem": "0", "body": "0", "head": "1.0e-03"}
    | {"trainable": "1,290"},
    {"stage": "top-1", "epochs": "3", "bn": "frozen", "stem": "0", "body": "1.0e-04"}
    | {"head": "1.0e-04", "trainable": "120,000"},
]


def _full_report() -> Report:
    report = Report("Digits <run>", subtitle="a & b")
    report.add_summary({"dataset": "digits", "backbone": "resnet10t", "seconds": 12.3456})
    report.add_plan(PLAN_ROWS, strategy="two_stage", notes=["BatchNorm stays frozen"])
    report.add_text("Advisor", ["small data", "large gap"])
    report.add_metrics(classification_metrics(Y, P))
    report.add_comparison(
        [
            {"strategy": "linear_probe", "accuracy": 0.61},
            {"strategy": "fine_tune", "accuracy": 0.7},
        ],
        "fine_tune beats linear_probe",
    )
    report.add_figure("Importance", curves.plot_layer_importance({"a": 1.0}), "bars")
    return report


def test_report_is_self_contained() -> None:
    html = _full_report().to_html()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "@import" not in html and "url(" not in html
    png = base64.b64decode(refs[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_report_numbers_match_the_terminal() -> None:
    metrics = classification_metrics(Y, P)
    html = _full_report().to_html()
    terminal = format_metrics(metrics)
    for name, value in metrics.items():
        text = format_value(value)
        assert text in terminal
        assert re.search(rf"<td>{name}</td><td class=\"num\">{re.escape(text)}</td>", html), name
    assert ">12.3456<" in html  # summary values use the same rounding


def test_report_escapes_user_strings() -> None:
    evil = "<img src=x onerror=alert(1)>"
    report = Report(evil, subtitle=evil)
    report.add_summary({evil: evil})
    report.add_table(evil, [{evil: evil}], caption=evil)
    report.add_text(evil, [evil])
    report.add_comparison([{"s": evil}], evil)
    report.add_plan([{"stage": evil, "g": "0"}], strategy=evil, notes=[evil])
    report.add_figure(evil, curves.figure_to_png_bytes(curves.plot_layer_importance({"a": 1})))
    html = report.to_html()
    assert evil not in html and "onerror=alert(1)>" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 12


def test_plan_marks_frozen_groups_and_shades_rates() -> None:
    html = Report("t").add_plan(PLAN_ROWS).to_html()
    assert html.count('<span class="frozen">frozen</span>') == 3 + 1  # cells + legend
    shades = re.findall(r"rgba\(0,114,178,([0-9.]+)\)\">([^<]+)<", html)
    assert [t for _, t in shades] == ["1.0e-03", "1.0e-04", "1.0e-04"]
    assert float(shades[0][0]) > float(shades[1][0])  # the larger rate is darker
    assert ">120,000<" in html and "<th>stage</th>" in html


def test_metrics_by_split_and_missing_values() -> None:
    html = (
        Report("t")
        .add_metrics({"val": {"accuracy": 0.5, "loss": 1.0}, "test": {"accuracy": 0.75}})
        .to_html()
    )
    assert '<th class="num">val</th><th class="num">test</th>' in html
    assert '<td class="num na">—</td>' in html  # loss was not measured on test
    assert "fraction of samples whose top class is right" in html


def test_sections_in_order_and_summary_defaults() -> None:
    html = _full_report().to_html()
    titles = re.findall(r"<h2>([^<]+)</h2>", html)
    assert titles == ["Plan", "Advisor", "Metrics", "Comparison", "Importance"]
    from graft import __version__

    assert f'<div class="k">graft</div><div class="v">{__version__}</div>' in html
    assert '<div class="k">generated</div>' in html


def test_add_figure_rejects_non_images() -> None:
    with pytest.raises(ConfigError, match="not a PNG"):
        Report("t").add_figure("x", b"GIF89a")
    with pytest.raises(ConfigError, match="Figure or PNG bytes"):
        Report("t").add_figure("x", "plot.png")


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _full_report().write(tmp_path / "out" / "report.html")
    first = path.read_text(encoding="utf-8")
    assert first.startswith("<!DOCTYPE html>")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        Report("second").write(path)
    assert path.read_text(encoding="utf-8") == first
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    monkeypatch.undo()

    def failing_render(self: Report) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(Report, "to_html", failing_render)
    with pytest.raises(RuntimeError):
        Report("x").write(tmp_path / "new.html")
    assert not (tmp_path / "new.html").exists()
