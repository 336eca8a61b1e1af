"""The advisor's baselines: raw downsampled pixels or TF-IDF, and a linear probe on features.

Kornblith et al., "Do Better ImageNet Models Transfer Better?", CVPR 2019, use the linear probe
as the cheap proxy of transfer: a probe on a backbone's features that loses to the same probe on
raw pixels warns of negative transfer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graft.data.transforms import load_image

#: Pixel baseline: images downsampled to this square size (RGB).
PIXEL_SIZE = 16


def pixel_features(paths: Sequence[Path], size: int = PIXEL_SIZE) -> np.ndarray:
    """Raw images downsampled to ``size x size`` RGB in [0, 1]: the guard's baseline inputs.

    Shape:
        ``(len(paths), size * size * 3)`` float32.
    """
    from PIL import Image

    out = np.empty((len(paths), size * size * 3), dtype=np.float32)
    for i, p in enumerate(paths):
        im = load_image(p, 3).resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(im, dtype=np.float32).reshape(-1) / 255.0
    return out


def linear_probe(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], task: str
) -> float:
    """Validation accuracy (classification) or R² (regression) of a standardised linear model.

    Args:
        train: ``(features, targets)`` the model is fitted on.
        val: ``(features, targets)`` it is scored on.
        task: ``classification`` (logistic regression) or ``regression`` (ridge, alpha by CV).

    Raises:
        ValueError: scikit-learn's, e.g. a single class in the training targets.
    """
    return float(probe_values(train, val, task).mean())


def probe_values(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], task: str
) -> np.ndarray:
    """The linear probe's score per validation example; their mean is :func:`linear_probe`.

    Classification: 1.0 where the prediction is right, else 0.0 (the mean is the accuracy).
    Regression: ``1 - n * error² / SS_tot`` per example, averaged over targets (the mean is
    scikit-learn's R², uniform over targets; a constant target column counts 0). Per-example
    values give the metric's standard error (:func:`standard_error`) and paired differences
    between two probes on the same examples.

    Shape:
        ``(len(val[1]),)`` float64.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = (
        LogisticRegression(max_iter=300)
        if task == "classification"
        else RidgeCV(alphas=np.logspace(-3, 3, 7))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), model).fit(*train)
        predicted = np.asarray(pipe.predict(val[0]))
    return per_example(predicted, val[1], task)


#: Labelled sets up to this size (train and validation together) are probed by cross-validation.
CROSS_MAX = 1000
#: Folds of that cross-validation.
FOLDS = 5


def crossed_values(
    values: Callable[[tuple[Any, np.ndarray], tuple[Any, np.ndarray], str], np.ndarray],
    train: tuple[Any, np.ndarray],
    val: tuple[Any, np.ndarray],
    task: str,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Per-example values of a probe (``values``: :func:`probe_values`, :func:`tfidf_values`)
    on every labelled example, each scored by a probe that did not see it.

    A small labelled set (train and validation together at most ``CROSS_MAX``) is split into
    ``FOLDS`` stratified folds (as many as the rarest class allows, at least 2) and every fold
    is scored by a probe fitted on the others: the guard then rests on all the labelled
    examples, not on a validation split of a dozen. A larger set, or one whose rarest class has
    a single example, is scored on the validation split alone. Values are in the order of
    ``train`` then ``val`` rows (cross-validated) or of ``val`` rows (held out).

    Shape:
        returns ``(n_train + n_val,)`` when cross-validated, else ``(n_val,)``.
    """
    n = len(train[1]) + len(val[1])
    y = np.concatenate([np.asarray(train[1]), np.asarray(val[1])])
    folds = FOLDS
    if task == "classification":
        folds = min(FOLDS, int(np.unique(y, return_counts=True)[1].min()))
    if n > CROSS_MAX or folds < 2:
        return values(train, val, task)
    from sklearn.model_selection import KFold, StratifiedKFold

    x = _join(train[0], val[0])
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if task == "classification"
        else KFold(folds, shuffle=True, random_state=seed)
    )
    out = np.empty(n, dtype=np.float64)
    for fit_idx, score_idx in splitter.split(np.zeros(n), y if task == "classification" else None):
        out[score_idx] = values(
            (_take(x, fit_idx), y[fit_idx]), (_take(x, score_idx), y[score_idx]), task
        )
    return out


def _join(a: Any, b: Any) -> Any:
    return np.concatenate([a, b]) if isinstance(a, np.ndarray) else [*a, *b]


def _take(x: Any, idx: np.ndarray) -> Any:
    return x[idx] if isinstance(x, np.ndarray) else [x[i] for i in idx]


def per_example(predicted: np.ndarray, targets: np.ndarray, task: str) -> np.ndarray:
    """Per-example values whose mean is the accuracy (classification) or R² (regression).

    Shape:
        predicted, targets: ``(n,)`` or ``(n, n_targets)``; returns ``(n,)`` float64.
    """
    predicted = np.asarray(predicted)
    y = np.asarray(targets)
    if task == "classification":
        return (predicted == y).astype(np.float64)
    y2, p2 = y.reshape(len(y), -1).astype(np.float64), predicted.reshape(len(y), -1)
    total = ((y2 - y2.mean(axis=0)) ** 2).sum(axis=0)
    values = np.where(total > 0, 1.0 - len(y) * (y2 - p2) ** 2 / np.where(total > 0, total, 1), 0)
    return np.asarray(values.mean(axis=1), dtype=np.float64)


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of per-example values (for accuracy: the binomial one)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("inf")
    return float(values.std(ddof=1) / np.sqrt(len(values)))


#: The text baseline's vocabulary: words and word pairs, at most this many.
TFIDF_FEATURES = 50_000
TFIDF_NAME = "TF-IDF + logistic regression"


def tfidf_probe(
    train: tuple[Sequence[str], np.ndarray], val: tuple[Sequence[str], np.ndarray], task: str
) -> float:
    """Validation accuracy (or R²) of TF-IDF + logistic regression (ridge): the text baseline.

    The raw-input baseline for text, as downsampled pixels are for images: words and word
    pairs weighted by sublinear TF-IDF, fitted on the training texts only.

    Raises:
        ValueError: scikit-learn's, e.g. a single class in the training targets.
    """
    return float(tfidf_values(train, val, task).mean())


def tfidf_values(
    train: tuple[Sequence[str], np.ndarray], val: tuple[Sequence[str], np.ndarray], task: str
) -> np.ndarray:
    """:func:`tfidf_probe` per validation example (as :func:`probe_values` for features)."""
    model = tfidf_model(task).fit(list(train[0]), train[1])
    return per_example(np.asarray(model.predict(list(val[0]))), val[1], task)


def tfidf_model(task: str) -> Any:
    """The text baseline, unfitted: TF-IDF then logistic regression (ridge for regression).

    One definition for the advisor's probe, ``graft compare``'s raw-input row and the demo.
    """
    from sklearn.pipeline import make_pipeline

    return make_pipeline(tfidf_vectorizer(), _linear(task))


def tfidf_vectorizer() -> object:
    """The TF-IDF settings every text baseline uses (probe, compare arm)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=TFIDF_FEATURES
    )


def _linear(task: str) -> object:
    from sklearn.linear_model import LogisticRegression, RidgeCV

    if task == "classification":
        return LogisticRegression(max_iter=1000, C=10.0)
    return RidgeCV(alphas=np.logspace(-3, 3, 7))
