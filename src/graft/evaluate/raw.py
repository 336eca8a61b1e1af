"""The raw-input baseline of ``graft compare``: a linear model with no network at all.

Images: each image downsampled to ``PIXEL_SIZE x PIXEL_SIZE`` RGB, standardised, then logistic
regression (classification) or ridge regression. Texts: TF-IDF over words and word pairs, then
the same linear models (:func:`graft.measure.probes.tfidf_model`, the advisor's text probe).
Multi-label fits one logistic regression per label. When every trained arm scores below this
row, the network is not earning its keep on these data.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.measure.probes import PIXEL_SIZE, TFIDF_FEATURES, pixel_features, tfidf_model
from graft.metrics import classification_metrics, multilabel_metrics, regression_metrics

if TYPE_CHECKING:
    from graft.data.base import Dataset, Samples


@dataclass(frozen=True)
class RawBaseline:
    """The raw-input baseline of one input kind: its row name and what it is, in one line."""

    name: str
    description: str


#: input kind -> its baseline (the table's row name and the log line).
RAW_BASELINES = {
    "image": RawBaseline(
        "pixels", f"no network, a linear model on {PIXEL_SIZE}x{PIXEL_SIZE} downsampled pixels"
    ),
    "text": RawBaseline(
        "tfidf", "no network, TF-IDF (words and word pairs) + a linear model on the texts"
    ),
}


def raw_baseline(dataset: Dataset) -> dict[str, Any]:
    """Val (and test) metrics of the raw-input linear model for ``dataset``'s input kind.

    Returns:
        ``{"metrics": {"val": {...}, "test": {...}}, "seconds": float, "trainable": int,
        "outputs": {"test": array}}``: outputs as a model's ``predict_outputs`` gives them
        (class probabilities, label probabilities, or values in the targets' units).
    """
    from sklearn.exceptions import ConvergenceWarning

    started = time.perf_counter()
    fit, width = _model(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        predict = fit(dataset.train)
        metrics: dict[str, dict[str, float]] = {}
        outputs: dict[str, np.ndarray] = {}
        for name, split in (("val", dataset.val), ("test", dataset.test)):
            if split is not None and len(split):
                outputs[name] = predict(split)
                metrics[name] = _metrics(dataset, split, outputs[name])
    n = max(_outputs(dataset), 1)
    return {
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 3),
        "trainable": int(width * n + n),
        "outputs": {k: v for k, v in outputs.items() if k == "test"},
    }


Predict = Callable[["Samples"], np.ndarray]


def _model(dataset: Dataset) -> tuple[Callable[[Samples], Predict], int]:
    """A function fitting the baseline on a split (returning its predictor), and its width."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    task = dataset.task
    if dataset.input_kind == "text":
        pipe = tfidf_model("classification" if task == "multilabel" else task)
        inputs: Callable[[Samples], Any] = lambda s: list(s.texts or [])  # noqa: E731
        width = TFIDF_FEATURES
    else:
        linear = (
            LogisticRegression(max_iter=500)
            if task in ("classification", "multilabel")
            else RidgeCV(alphas=np.logspace(-3, 3, 7))
        )
        pipe = make_pipeline(StandardScaler(), linear)
        inputs = lambda s: pixel_features(s.paths)  # noqa: E731
        width = PIXEL_SIZE * PIXEL_SIZE * 3
    if task == "multilabel":
        pipe = OneVsRestClassifier(pipe)

    def fit(train: Samples) -> Predict:
        model = pipe.fit(inputs(train), train.targets)
        if task == "regression":
            return lambda s: model.predict(inputs(s))
        if task == "multilabel":
            return lambda s: model.predict_proba(inputs(s))
        classes = model.classes_

        def proba(s: Samples) -> np.ndarray:
            out = np.zeros((len(s), _outputs(dataset)))
            out[:, classes] = model.predict_proba(inputs(s))
            return out

        return proba

    return fit, width


def _outputs(dataset: Dataset) -> int:
    if dataset.task == "classification":
        return len(dataset.class_names or []) or int(dataset.train.targets.max()) + 1
    return int(np.asarray(dataset.train.targets).reshape(len(dataset.train), -1).shape[1])


def _metrics(dataset: Dataset, split: Samples, out: np.ndarray) -> dict[str, float]:
    if dataset.task == "classification":
        return classification_metrics(split.targets, out)
    if dataset.task == "multilabel":
        return multilabel_metrics(split.targets, out)
    return regression_metrics(split.targets, out)
