"""Metrics: hand-computed reference values, edge cases, directions and formatting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graft.errors import ConfigError, DataError
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

# 4 samples, binary: P(class 1) = .1 .6 .3 .8 for labels 0 1 1 0
Y4 = np.array([0, 1, 1, 0])
P4 = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8]])


def test_binary_reference_values() -> None:
    m = classification_metrics(Y4, P4)
    # predictions 0 1 0 1: two right; AUC pairs (pos .6,.3 vs neg .1,.8): 2 of 4 ordered
    assert m["accuracy"] == 0.5
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["roc_auc"] == pytest.approx(0.5)
    expected_ll = -(math.log(0.9) + math.log(0.6) + math.log(0.3) + math.log(0.2)) / 4
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert not any(k.startswith("top") for k in m)  # no top-k for two classes


def test_binary_imperfect_accuracy_perfect_ranking() -> None:
    y = np.array([0, 0, 1, 1])
    m = classification_metrics(y, np.array([0.1, 0.6, 0.7, 0.9]))  # 1-D: P(class 1)
    assert m["accuracy"] == 0.75
    assert m["roc_auc"] == 1.0
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # class 0: P=1, R=.5, F1=2/3; class 1: P=2/3, R=1, F1=.8
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_top_k_uses_at_most_n_classes_minus_one() -> None:
    y = np.array([0, 1, 2, 3])
    p = np.array(
        [
            [0.1, 0.2, 0.3, 0.4],  # true class ranked 4th
            [0.1, 0.2, 0.3, 0.4],  # 3rd
            [0.1, 0.2, 0.3, 0.4],  # 2nd
            [0.1, 0.2, 0.3, 0.4],  # 1st
        ]
    )
    m = classification_metrics(y, p, top_k=5)
    assert m["top3_accuracy"] == 0.75 and "top5_accuracy" not in m
    assert classification_metrics(y, p, top_k=2)["top2_accuracy"] == 0.5
    assert m["accuracy"] == 0.25


def test_multiclass_auc_and_log_loss_match_sklearn() -> None:
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    logits = rng.normal(size=(40, 4)) + np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    m = classification_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))


def test_auc_omitted_when_a_class_is_missing() -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([[0.6, 0.3, 0.1]] * 4)
    m = classification_metrics(y, p)
    assert "roc_auc" not in m
    assert "roc_auc" not in classification_metrics(np.array([1, 1]), np.array([0.3, 0.8]))


@pytest.mark.parametrize(
    ("y", "p", "names", "match"),
    [
        (np.array([0, 1]), np.ones((3, 2)) / 2, None, "3 samples|y_true has 2"),
        (np.array([0, 5]), np.ones((2, 2)) / 2, None, "0..1"),
        (np.array([0, 1]), np.ones((2, 2)) / 2, ["a"], "class_names has 1"),
        (np.array([], dtype=int), np.ones((0, 2)), None, "empty"),
    ],
)
def test_classification_input_errors(y: np.ndarray, p: np.ndarray, names, match: str) -> None:
    with pytest.raises(DataError, match=match):
        classification_metrics(y, p, class_names=names)


def test_per_class_report_and_confusion() -> None:
    rows = per_class_report(Y4, P4, ["cat", "dog"])
    assert [r["class"] for r in rows] == ["cat", "dog"]
    assert rows[0] == pytest.approx(
        {"class": "cat", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "roc_auc": 0.5}
    )
    three = per_class_report(Y4, np.c_[P4 * 0.9, np.full(4, 0.1)], ["a", "b", "c"])
    assert three[2]["support"] == 0 and three[2]["roc_auc"] is None
    cm = confusion(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


def test_regression_metrics_in_original_units() -> None:
    y, pred = np.array([1.0, 2, 3, 4]), np.array([2.0, 2, 3, 6])  # errors 1 0 0 2
    m = regression_metrics(y, pred)
    assert m == pytest.approx({"mae": 0.75, "rmse": math.sqrt(5 / 4), "r2": 0.0})
    scaled = regression_metrics(100 * y, 100 * pred)  # units carry through, R² does not move
    assert scaled == pytest.approx({"mae": 75.0, "rmse": 100 * math.sqrt(5 / 4), "r2": 0.0})


def test_regression_several_targets_average_and_suffix() -> None:
    y = np.array([[1.0, 10], [2, 20], [3, 30]])
    pred = np.array([[1.0, 12], [2, 18], [4, 30]])
    m = regression_metrics(y, pred, target_names=["a", "b"])
    assert m["r2_a"] == pytest.approx(0.5) and m["r2_b"] == pytest.approx(0.96)
    assert m["mae_b"] == pytest.approx(4 / 3)
    assert m["r2"] == pytest.approx((0.5 + 0.96) / 2)
    assert m["mae"] == pytest.approx((m["mae_a"] + m["mae_b"]) / 2)
    from sklearn.metrics import r2_score

    assert m["r2"] == pytest.approx(r2_score(y, pred))


def test_regression_constant_target_and_errors() -> None:
    assert regression_metrics(np.ones(3), np.ones(3))["r2"] == 1.0
    assert regression_metrics(np.ones(3), np.array([1, 2, 1.0]))["r2"] == 0.0
    assert "r2" not in regression_metrics(np.ones(1), np.ones(1))
    with pytest.raises(DataError, match="shape"):
        regression_metrics(np.ones(3), np.ones(4))


def test_multilabel_reference_values() -> None:
    from sklearn.metrics import f1_score

    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.9, 0.2], [0.3, 0.7], [0.4, 0.8]])  # predicted [1,0] [0,1] [0,1]
    m = multilabel_metrics(y, p)
    assert m["subset_accuracy"] == pytest.approx(2 / 3)
    assert m["hamming_loss"] == pytest.approx(1 / 6)
    assert m["micro_f1"] == pytest.approx(f1_score(y, p >= 0.5, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p >= 0.5, average="macro"))
    assert m["roc_auc"] == pytest.approx(1.0)
    assert multilabel_metrics(y, p, threshold=0.35)["subset_accuracy"] == 1.0
    assert "roc_auc" not in multilabel_metrics(np.ones((2, 2)), np.full((2, 2), 0.7))


@pytest.mark.parametrize("name", list(METRICS))
def test_every_registered_metric_has_a_direction(name: str) -> None:
    direction = METRICS.get(name).direction
    assert direction in ("max", "min")
    for variant in (name, f"val_{name}", f"{name}_age", f"species_{name}"):
        assert metric_direction(variant) == direction


def test_every_computed_key_has_a_direction() -> None:
    keys = set(classification_metrics(np.arange(4) % 4, np.eye(4) * 0.7 + 0.075))
    keys |= set(regression_metrics(np.ones((3, 2)), np.ones((3, 2)), target_names=["a", "b"]))
    keys |= set(multilabel_metrics(np.eye(2), np.eye(2)))
    assert {"top3_accuracy", "rmse_b", "hamming_loss"} <= keys
    for key in keys:
        metric_direction(f"val_{key}")


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("val_loss", "min"),
        ("train_loss", "min"),
        ("val_top5_accuracy", "max"),
        ("R2", "max"),
        ("val_hamming_loss", "min"),
        ("age_rmse", "min"),
        ("val-macro-f1", "max"),
    ],
)
def test_metric_direction_examples(name: str, direction: str) -> None:
    assert metric_direction(name) == direction


def test_unknown_metric_names_the_monitorable_ones() -> None:
    with pytest.raises(ConfigError, match=r"val_accuracy.*val_loss"):
        metric_direction("bleu")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.96, "0.9600"),
        (1 / 3, "0.3333"),
        (12345.678, "12,345.7"),
        (0.00012, "1.20e-04"),
        (0.0, "0.0000"),
        (1234, "1,234"),
        (np.int64(7), "7"),
        (float("nan"), "n/a"),
        (None, "n/a"),
        (np.float32(0.5), "0.5000"),
        ("two_stage", "two_stage"),
        (True, "yes"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


def test_format_metrics_aligns_names_and_values() -> None:
    m = classification_metrics(Y4, P4)
    lines = format_metrics(m).splitlines()
    assert len(lines) == len(m)
    assert len({len(line) for line in lines}) == 1  # values right-aligned to one edge
    for line, (k, v) in zip(lines, m.items(), strict=True):
        assert line.split() == [k, format_value(v)]


def test_format_metrics_by_split() -> None:
    text = format_metrics({"val": {"accuracy": 0.5, "loss": 1.25}, "test": {"accuracy": 0.75}})
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "val", "test"]
    assert lines[1].split() == ["accuracy", "0.5000", "0.7500"]
    assert lines[2].split() == ["loss", "1.2500", "n/a"]
    assert format_metrics({}) == "  (no metrics)"


# ---------------------------------------------------------------- NumPy against scikit-learn


def _digits_predictions() -> tuple[np.ndarray, np.ndarray]:
    """Real, imperfect class probabilities: a weak logistic regression on scikit-learn's digits.

    Rounded to two decimals so that scores tie, as they do on small validation sets.
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    clf = LogisticRegression(C=1e-4, max_iter=200).fit(x[:300], y[:300])
    return y[300:700], np.round(clf.predict_proba(x[300:700]), 2)


def test_classification_metrics_match_sklearn_on_real_predictions() -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss, roc_auc_score

    y, p = _digits_predictions()
    p = p / p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    assert 0.3 < np.mean(pred == y) < 0.99  # imperfect, so every metric has work to do
    m = classification_metrics(y, p)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    # two classes: AUC of class 1 with many tied scores
    two = np.isin(y, [3, 8])
    yb, pb = (y[two] == 8).astype(int), p[two][:, [3, 8]]
    pb = pb / np.clip(pb.sum(axis=1, keepdims=True), 1e-12, None)
    mb = classification_metrics(yb, pb)
    assert mb["roc_auc"] == pytest.approx(roc_auc_score(yb, pb[:, 1]), abs=1e-12)
    assert mb["macro_f1"] == pytest.approx(f1_score(yb, pb.argmax(axis=1), average="macro"))


def test_labels_missing_from_truth_or_predictions_match_sklearn() -> None:
    """A class never predicted, and a predicted class absent from y_true (small val sets)."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

    y, p = _digits_predictions()
    keep = y != 5  # class 5 never occurs in y_true, some rows may still predict it
    y, p = y[keep], p[keep]
    p[:, 9] = 0.0  # class 9 is never predicted
    pred = p.argmax(axis=1)
    m = classification_metrics(y, p / p.sum(axis=1, keepdims=True))
    with pytest.warns(UserWarning):
        expected_bal = balanced_accuracy_score(y, pred)
    assert m["balanced_accuracy"] == pytest.approx(expected_bal, abs=1e-12)
    assert m["macro_f1"] == pytest.approx(
        f1_score(y, pred, average="macro", zero_division=0), abs=1e-12
    )
    names = [str(c) for c in range(10)]
    rows = per_class_report(y, p / p.sum(axis=1, keepdims=True), names)
    prec, rec, f1, support = precision_recall_fscore_support(
        y, pred, labels=list(range(10)), zero_division=0
    )
    for c, row in enumerate(rows):
        assert row["precision"] == pytest.approx(prec[c], abs=1e-12)
        assert row["recall"] == pytest.approx(rec[c], abs=1e-12)
        assert row["f1"] == pytest.approx(f1[c], abs=1e-12)
        assert row["support"] == support[c]


def test_multilabel_metrics_match_sklearn_on_real_predictions() -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    y, p = _digits_predictions()
    t = np.stack([y % 2 == 0, y < 5, np.isin(y, [0, 6, 8, 9]), y == 1], axis=1).astype(int)
    scores = np.stack(
        [p[:, ::2].sum(1), p[:, :5].sum(1), p[:, [0, 6, 8, 9]].sum(1), p[:, 1]], axis=1
    )
    scores[:, 3] = 0.0  # a label never predicted: its F1 is 0, as with zero_division=0
    m = multilabel_metrics(t, scores)
    pred = scores >= 0.5
    assert m["micro_f1"] == pytest.approx(f1_score(t, pred, average="micro", zero_division=0))
    assert m["macro_f1"] == pytest.approx(f1_score(t, pred, average="macro", zero_division=0))
    expected_auc = np.mean([roc_auc_score(t[:, j], scores[:, j]) for j in range(4)])
    assert m["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)


def test_the_metrics_module_does_not_import_sklearn() -> None:
    """Per-epoch metrics cost no scikit-learn import (about a second of start-up)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from graft.metrics import classification_metrics as c, "
        "multilabel_metrics as m; c(np.array([0, 1, 1]), np.array([.2, .7, .4])); "
        "m(np.eye(2), np.eye(2)); print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
