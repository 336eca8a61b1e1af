"""The raw-input baseline of ``graft compare``: a linear model on downsampled pixels.

No backbone at all: each image is resized to ``PIXEL_SIZE x PIXEL_SIZE`` RGB and fed to a
standardised logistic regression (classification) or ridge regression. When every trained arm
scores below this, the network is not earning its keep on these data.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from graft.measure.probes import PIXEL_SIZE, pixel_features
from graft.metrics import classification_metrics, regression_metrics

if TYPE_CHECKING:
    from graft.data.base import Dataset


def pixel_baseline(dataset: Dataset) -> dict[str, Any]:
    """Val (and test) metrics of a linear model on downsampled pixels, and its time.

    Returns:
        ``{"metrics": {"val": {...}, "test": {...}}, "seconds": float, "trainable": int}``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    classify = dataset.task == "classification"
    model = LogisticRegression(max_iter=500) if classify else RidgeCV(alphas=np.logspace(-3, 3, 7))
    x = pixel_features(dataset.train.paths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), model).fit(x, dataset.train.targets)
    metrics: dict[str, dict[str, float]] = {}
    for name, split in (("val", dataset.val), ("test", dataset.test)):
        if split is None or not len(split):
            continue
        feats = pixel_features(split.paths)
        if classify:
            n = len(dataset.class_names or []) or int(dataset.train.targets.max()) + 1
            proba = np.zeros((len(split), n))
            proba[:, pipe.classes_] = pipe.predict_proba(feats)
            metrics[name] = classification_metrics(split.targets, proba)
        else:
            metrics[name] = regression_metrics(split.targets, pipe.predict(feats))
    width = PIXEL_SIZE * PIXEL_SIZE * 3
    outputs = len(dataset.class_names or []) if classify else 1
    return {
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 3),
        "trainable": int(width * max(outputs, 1) + max(outputs, 1)),
    }
