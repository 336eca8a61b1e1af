"""``graft demo``: the advisor's plan (--strategy auto), the comparison, the data-efficiency curve,
a noise-aware verdict and a report, on a reduced set of digits."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from graft.workflows.demo import CURVE_ARMS, DEMO_ARMS, run_demo

VERDICTS = ("Transfer helps", "Transfer does not help", "No clear difference")


def test_demo_fits_compares_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = run_demo(tmp_path, epochs=1, progress=False, per_class=5, image_size=32)
    out = capsys.readouterr().out
    assert (model_dir / "config.json").is_file()
    config = json.loads((model_dir / "config.json").read_text())
    assert config["record"]["advice"]  # --strategy auto: the advisor chose the plan
    advice = config["record"]["advice"]
    assert advice["facts"]["size_given"] and config["data_config"]["input_size"][-1] == 32
    plan = config["record"]["plan"]
    assert sum(s["epochs"] for s in plan["stages"]) == 1, "the demo's total budget"
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["arm", "kind"])
    expected = ["auto", *DEMO_ARMS]
    arms = [line.split()[0] for line in lines[start + 2 : start + 2 + len(expected)]]
    assert arms == expected
    curve = lines.index("data efficiency (accuracy on the same test split):")
    sizes = lines[curve + 1 : curve + 3]
    assert len(sizes) == 2 and all(" training images: " in s and "  -> " in s for s in sizes)
    assert all(all(a in s for a in CURVE_ARMS) for s in sizes)
    report = tmp_path / "report.html"
    assert f"report: {report}" in out
    page = report.read_text()
    (verdict,) = [line for line in lines if line.startswith(VERDICTS)]
    assert html.escape(verdict, quote=True) in page
    assert "Confusion matrix (test)" in page and "Data efficiency" in page
    assert out.rstrip().splitlines()[-1].startswith("time: ")
