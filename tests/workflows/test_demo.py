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


@pytest.mark.parametrize(("kept", "reused"), [("scratch", True), ("transfer", False)])
def test_the_races_small_cnn_is_the_comparisons_small_cnn_arm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: str, reused: bool
) -> None:
    """When auto's race kept small_cnn (trained at the demo's small-CNN side, on the same splits,
    epochs and rate), the comparison reuses it as its small_cnn arm instead of training it again;
    otherwise the arm is trained."""
    from types import SimpleNamespace

    import graft.workflows.demo as demo
    from graft.config import StrategyConfig

    seen: dict = {}

    def fake_compare(dataset: object, **kwargs: object) -> object:
        seen.update(kwargs)
        raise SystemExit  # stop after the call: only the arguments are checked

    monkeypatch.setattr(demo, "run_compare", fake_compare)
    race = {"kept": kept, "network": "small_cnn"}
    model = SimpleNamespace(
        info={"advice": {"facts": {"image_size": 64}, "race": race}},
        data_config=SimpleNamespace(image_size=16),
    )
    dataset = SimpleNamespace(class_names=list("0123456789"), train=list(range(100)))
    with pytest.raises(SystemExit):
        demo._compare(dataset, model, tmp_path, 12)  # type: ignore[arg-type]
    fitted = seen["fitted"]
    assert fitted["auto"] is model and (fitted.get("small_cnn") is model) == reused
    assert seen["small_cnn_size"] == demo.DEMO_SMALL_CNN_SIZE and seen["image_size"] == 64
    assert seen["lr"] == StrategyConfig().lr  # every arm at the fit's default rate
