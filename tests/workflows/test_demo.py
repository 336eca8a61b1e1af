"""``graft demo`` ends with the comparison table and a report, on a reduced set of digits."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from graft.workflows.demo import DEMO_ARMS, run_demo


def test_demo_fits_compares_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = run_demo(tmp_path, epochs=1, progress=False, per_class=5, image_size=32)
    out = capsys.readouterr().out
    assert (model_dir / "config.json").is_file()
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["arm", "kind"])
    arms = [line.split()[0] for line in lines[start + 2 : start + 2 + 1 + len(DEMO_ARMS)]]
    assert arms == ["two_stage", *DEMO_ARMS]
    report = tmp_path / "report.html"
    assert f"report: {report}" in out
    page = report.read_text()
    verdict = lines[start + 4 + len(DEMO_ARMS)]
    assert verdict.startswith("Transfer") and html.escape(verdict, quote=True) in page
    assert "Confusion matrix (test)" in page
    assert out.rstrip().splitlines()[-1].startswith("time: ")
