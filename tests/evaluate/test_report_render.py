"""The sample report renders in a real browser (headless Chromium) with its plots visible."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from graft.evaluate.compare import Comparison
from graft.evaluate.report import Report

BENCH = Path(__file__).resolve().parents[2] / "bench" / "report_screenshot.py"

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
    reason="headless Chromium is not installed (Debian: apt-get install -y chromium)",
)


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_screenshot", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_report_renders_with_plots(tmp_path: Path) -> None:
    bench = _bench()
    html = bench.build_sample_report(tmp_path, quick=True)
    full = bench.pixel_stats(bench.screenshot(html, tmp_path / "full.png", (1280, 2400)))
    empty_html = Report("Empty").write(tmp_path / "empty.html")
    empty = bench.pixel_stats(bench.screenshot(empty_html, tmp_path / "empty.png", (1280, 2400)))
    assert (full["width"], full["height"]) == (1280, 2400)
    # a page with only a title is nearly blank; tables and plots cover far more of it
    assert empty["ink_fraction"] < 0.02 and full["ink_fraction"] > 0.03
    # the plots and the plan's shaded cells bring saturated colour a bare page lacks
    assert full["colour_fraction"] > 10 * max(empty["colour_fraction"], 1e-4)
    assert full["distinct_colours"] > 500


def test_compare_report_renders_with_plots(
    run: tuple[Comparison, list, Path], tmp_path: Path
) -> None:
    """The acceptance check: a real ``graft.compare`` report, screenshot in headless Chromium."""
    bench = _bench()
    _, _, html = run
    shot = bench.pixel_stats(bench.screenshot(html, tmp_path / "compare.png", (1280, 3200)))
    empty_html = Report("Empty").write(tmp_path / "empty.html")
    empty = bench.pixel_stats(bench.screenshot(empty_html, tmp_path / "empty.png", (1280, 3200)))
    assert shot["ink_fraction"] > 0.03 > empty["ink_fraction"]
    assert shot["colour_fraction"] > 10 * max(empty["colour_fraction"], 1e-4)
    assert shot["distinct_colours"] > 500
