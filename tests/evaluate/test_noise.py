"""Verdicts that respect noise: bootstrap intervals and the no-clear-winner rule, constructed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graft.evaluate.compare import make_verdict
from graft.evaluate.noise import (
    bootstrap_interval,
    clears_noise,
    expected_calibration_error,
    fit_temperature,
    paired_difference,
    scale_temperature,
    seed_spread,
)


def _correct(n: int, right: int, seed: int = 0) -> np.ndarray:
    """n per-example 0/1 values with exactly ``right`` ones, shuffled."""
    v = np.zeros(n)
    v[:right] = 1
    return np.random.default_rng(seed).permutation(v)


def test_interval_covers_the_truth_at_the_expected_width() -> None:
    ci = bootstrap_interval(_correct(1000, 700))
    assert ci.value == pytest.approx(0.7) and ci.low < 0.7 < ci.high
    # Binomial standard error sqrt(.7*.3/1000) = 0.0145: 95% half-width about 0.028.
    assert 0.022 < (ci.high - ci.low) / 2 < 0.034
    small = bootstrap_interval(_correct(100, 70))
    assert small.high - small.low > 2.5 * (ci.high - ci.low)  # 10x fewer examples, ~3x wider


def test_the_issue_case_is_no_clear_winner() -> None:
    """0.688 vs 0.682 on 1,000 test images (the issue's Fashion-MNIST compare): noise."""
    a, b = _correct(1000, 688, seed=1), _correct(1000, 682, seed=2)
    diff = paired_difference(a, b)
    assert diff.value == pytest.approx(0.006)
    assert diff.low < 0 < diff.high and not clears_noise(diff, "accuracy")


def test_pairing_sees_a_consistent_small_gain() -> None:
    """B is A plus 30 fixed examples: unpaired intervals overlap, the paired one excludes 0."""
    a = _correct(1000, 700)
    b = a.copy()
    b[np.flatnonzero(a == 0)[:30]] = 1
    assert bootstrap_interval(a).high > bootstrap_interval(b).low  # overlapping
    diff = paired_difference(b, a)
    assert diff.low > 0 and clears_noise(diff, "accuracy")


def test_one_example_is_never_a_win() -> None:
    a = np.ones(50)
    b = a.copy()
    b[0] = 0
    diff = paired_difference(a, b)
    assert diff.value == pytest.approx(0.02)
    assert not clears_noise(diff, "accuracy")


def _rows(t_acc: float, s_acc: float) -> list[dict[str, object]]:
    return [
        {"arm": "small_cnn", "kind": "scratch", "test accuracy": s_acc, "time (s)": 3.0},
        {"arm": "two_stage", "kind": "transfer", "test accuracy": t_acc, "time (s)": 40.0},
    ]


def test_verdict_says_no_clear_difference_and_picks_the_cheaper() -> None:
    per_example = {"two_stage": _correct(1000, 688, 1), "small_cnn": _correct(1000, 682, 2)}
    text, best = make_verdict(_rows(0.688, 0.682), "accuracy", per_example)
    assert text.startswith("No clear difference") and best == "small_cnn"
    assert "1000 test examples" in text and "one test example is 0.10 points" in text
    assert "Use small_cnn, the cheaper to train (3.0 s)" in text


def test_verdict_names_a_clear_winner_with_its_interval() -> None:
    per_example = {"two_stage": _correct(1000, 900, 1), "small_cnn": _correct(1000, 700, 2)}
    text, best = make_verdict(_rows(0.9, 0.7), "accuracy", per_example)
    assert best == "two_stage" and text.startswith("Transfer helps")
    assert "by 20.0 points of accuracy, 95% interval +" in text
    per_example = {"two_stage": _correct(1000, 700, 1), "small_cnn": _correct(1000, 900, 2)}
    text, best = make_verdict(_rows(0.7, 0.9), "accuracy", per_example)
    assert best == "small_cnn" and "does not help" in text and "95% interval +" in text


def test_a_tie_between_auto_and_the_arm_its_race_returned_names_the_arm() -> None:
    """The demo's auto arm is the race's small_cnn itself: the verdict names small_cnn."""
    rows = [{**_rows(0.7, 0.9)[0], "arm": "auto"}, *_rows(0.7, 0.9)]
    per_example = {"two_stage": _correct(1000, 700, 1)}
    per_example["small_cnn"] = per_example["auto"] = _correct(1000, 900, 2)
    text, best = make_verdict(rows, "accuracy", per_example)
    assert best == "small_cnn" and "baseline (small_cnn)" in text, text


def test_a_winner_chosen_on_validation_quotes_the_test_gap_beside_its_interval() -> None:
    """The interval is the test split's: it stands beside the test gap, not the validation one
    (the demo printed "by 7.1 points on validation, 95% interval +1.9 to +7.0")."""
    rows = _rows(0.90, 0.70)
    rows[0]["val accuracy"], rows[1]["val accuracy"] = 0.65, 0.95  # 30 points on validation
    per_example = {"two_stage": _correct(1000, 900, 1), "small_cnn": _correct(1000, 700, 2)}
    text, best = make_verdict(rows, "accuracy", per_example)
    assert best == "two_stage"
    assert "by 30.0 points of accuracy on validation (on test +20.0 points, 95% interval +" in text


def test_rmse_differences_use_the_root_mean_statistic() -> None:
    rng = np.random.default_rng(0)
    sq_a, sq_b = rng.normal(0, 1.0, 400) ** 2, rng.normal(0, 1.5, 400) ** 2
    rows = [
        {"arm": "scratch", "kind": "scratch", "test rmse": float(np.sqrt(sq_b.mean()))},
        {"arm": "two_stage", "kind": "transfer", "test rmse": float(np.sqrt(sq_a.mean()))},
    ]
    text, best = make_verdict(rows, "rmse", {"two_stage": sq_a, "scratch": sq_b})
    assert best == "two_stage" and "Transfer helps" in text
    assert "95% interval +0." in text  # the rmse gap, 4 significant digits
    few_a, few_b = sq_a[:20], rng.normal(0, 1.1, 20) ** 2  # 20 examples cannot tell 1.0 from 1.1
    rows[0]["test rmse"], rows[1]["test rmse"] = np.sqrt(few_b.mean()), np.sqrt(few_a.mean())
    text, best = make_verdict(rows, "rmse", {"two_stage": few_a, "scratch": few_b})
    assert text.startswith("No clear difference") and "within the noise of 20 test" in text
    assert best == "scratch"  # equally cheap (no times): ties go to from scratch


def test_seed_spread() -> None:
    assert seed_spread([0.9]) == (0.9, 0.0)
    mean, sd = seed_spread([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9) and sd == pytest.approx(0.1)


def test_temperature_scaling_fixes_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    n, k = 2000, 5
    targets = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), targets] += 1.5  # about 60 % right
    honest = scale_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 1.0)
    overconfident = scale_temperature(honest, 0.25)  # logits x4
    before = expected_calibration_error(overconfident, targets)
    t = fit_temperature(overconfident[:1000], targets[:1000])
    after = expected_calibration_error(scale_temperature(overconfident[1000:], t), targets[1000:])
    assert 2.0 < t < 6.0  # undoes most of the x4 (the honest logits are not exactly calibrated)
    assert before > 0.15 and after < before / 4
    assert (scale_temperature(overconfident, t).argmax(1) == overconfident.argmax(1)).all()


def test_calibrate_fits_on_val_and_the_saved_model_keeps_it(
    small_digits: Path, tmp_path: Path
) -> None:
    import graft
    from graft.data import load
    from graft.evaluate.calibration import calibrate, calibration_text

    data = load(small_digits, seed=0)
    model = graft.fit(
        data, backbone="scratch:small_cnn", pretrained=False, image_size=32, epochs=3,
        batch_size=16, seed=0, log=lambda m: None,
    )  # fmt: skip
    test = model.samples_for(data)
    raw = model.predict_outputs(test)
    result = calibrate(model, data)
    assert result is not None and result["temperature"] > 0
    assert model.task_spec.temperature == pytest.approx(result["temperature"])
    scaled = model.predict_outputs(test)
    assert (scaled.argmax(1) == raw.argmax(1)).all()  # accuracy unchanged
    np.testing.assert_allclose(scaled, scale_temperature(raw, result["temperature"]), atol=1e-5)
    assert result["ece_after"] == pytest.approx(
        expected_calibration_error(scaled, test.targets), rel=1e-4, abs=1e-6
    )  # float32 outputs
    assert "after temperature scaling" in calibration_text("small_cnn", result)
    model.save(tmp_path / "m")
    loaded = graft.load(tmp_path / "m")
    assert loaded.task_spec.temperature == pytest.approx(result["temperature"])
    np.testing.assert_allclose(loaded.predict_outputs(test), scaled, atol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        model.set_temperature(0.0)
