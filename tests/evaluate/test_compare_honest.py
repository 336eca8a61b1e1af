"""``graft compare`` chooses honestly: on validation, with the advisor's plan and raw pixels."""

from __future__ import annotations

from pathlib import Path

from graft.data import load as load_data
from graft.evaluate.compare import make_verdict
from graft.evaluate.raw import raw_baseline


def test_the_arm_is_chosen_on_validation_not_on_the_reported_test_split() -> None:
    rows = [
        {"arm": "scratch", "kind": "scratch", "test accuracy": 0.90, "val accuracy": 0.60},
        {"arm": "two_stage", "kind": "transfer", "test accuracy": 0.80, "val accuracy": 0.85},
    ]
    text, best = make_verdict(rows, "accuracy")
    assert best == "two_stage", "the better test score must not decide"
    assert "Transfer helps" in text and "25.0 points" in text


def test_pixel_baseline_scores_digits_well_above_chance(small_digits: Path) -> None:
    data = load_data(small_digits, seed=0)
    result = raw_baseline(data)
    assert set(result["metrics"]) == {"val", "test"}
    assert result["metrics"]["val"]["accuracy"] > 0.3, "digits are easy for pixels (chance 0.1)"
    assert result["trainable"] == 16 * 16 * 3 * 10 + 10


def test_the_baseline_is_a_row_and_a_contender(small_digits: Path, tmp_path: Path) -> None:
    import graft
    from graft.testing import tiny_backbone

    report = tmp_path / "r.html"
    result = graft.compare(
        small_digits, backbone=tiny_backbone(), arms=["feature_extraction"], baseline=True,
        epochs=1, batch_size=16, image_size=32, fractions=[], budget="quick", importance=False,
        cache_dir=str(tmp_path / "c"), report=report, log=lambda _: None,
    )  # fmt: skip
    assert result.baseline is not None and result.baseline["arm"] == "pixels"
    assert 0 <= result.baseline["test accuracy"] <= 1
    assert result.table().splitlines()[-1].split()[0] == "pixels"
    assert ">pixels<" in report.read_text()
    contenders = {r["arm"]: r for r in [*result.rows, result.baseline]}
    top = max(r["val accuracy"] for r in contenders.values())
    assert contenders[result.recommended]["val accuracy"] == top, "the best on validation"
