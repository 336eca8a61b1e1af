"""Contract tests over EVERY registered score: a new score is tested by registering it."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from graft._registry import UnknownNameError
from graft.errors import ConfigError
from graft.measure.scores import SCORES, ScoreSpec, names_for, score

pytestmark = pytest.mark.filterwarnings("error")  # a RuntimeWarning (0/0, log 0) is a failure

CASES = [(name, task) for name, spec in SCORES.items() for task in sorted(spec.tasks)]


def source_probs_from(features: np.ndarray, n_source: int = 30) -> np.ndarray:
    """A stand-in source classifier: soft assignment to fixed prototypes (rows of features)."""
    pick = np.random.default_rng(0).choice(
        len(features), min(n_source, len(features)), replace=False
    )
    protos = features[pick]
    d2 = ((features[:, None, :] - protos[None]) ** 2).sum(-1)
    logits = -d2 / max(np.median(d2), 1e-12)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def inputs_for(name: str, features: np.ndarray) -> np.ndarray:
    """What the score needs, derived from the features."""
    return features if SCORES.get(name).needs == "features" else source_probs_from(features)


def compute(name: str, task: str, features: np.ndarray, targets: np.ndarray) -> float:
    return call(name, task, inputs_for(name, features), targets)


def call(name: str, task: str, inputs: np.ndarray, targets: np.ndarray) -> float:
    kwargs = {SCORES.get(name).needs: inputs}
    return score(name, targets=targets, task=task, **kwargs)  # type: ignore[arg-type]


@cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:400].astype(np.float64), y[:400]  # 64 raw pixels, several always 0


def targets_for(task: str, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if task == "classification":
        return labels
    w = np.random.default_rng(1).normal(size=features.shape[1])
    return features @ w + 0.1 * np.random.default_rng(2).normal(size=len(features))


def test_registry_entries_are_complete() -> None:
    assert {"logme", "leep", "nce", "hscore", "hscore_shrinkage"} <= set(SCORES)
    for name, spec in SCORES.items():
        assert isinstance(spec, ScoreSpec) and spec.name == name
        assert spec.citation and spec.tasks and callable(spec.fn)


@pytest.mark.parametrize("name,task", CASES)
def test_digits_pixels_beat_noise(name: str, task: str) -> None:
    x, labels = digits()
    noise = np.random.default_rng(3).normal(size=x.shape)
    y = targets_for(task, x, labels)
    good, bad = compute(name, task, x, y), compute(name, task, noise, y)
    assert np.isfinite(good) and np.isfinite(bad)
    assert good > bad


@pytest.mark.parametrize("name,task", CASES)
def test_separable_gaussian_mix_beats_noise(name: str, task: str) -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, 200)
    centers = 4.0 * rng.normal(size=(4, 12))
    separable = centers[labels] + rng.normal(size=(200, 12))
    noise = rng.normal(size=(200, 12)) * separable.std(axis=0)
    y = targets_for(task, separable, labels)
    assert compute(name, task, separable, y) > compute(name, task, noise, y)


@pytest.mark.parametrize("name,task", CASES)
def test_invariant_to_sample_order(name: str, task: str) -> None:
    x, labels = digits()
    y = targets_for(task, x, labels)
    inputs = inputs_for(name, x)
    perm = np.random.default_rng(5).permutation(len(x))
    assert call(name, task, inputs[perm], y[perm]) == pytest.approx(
        call(name, task, inputs, y), rel=1e-7, abs=1e-9
    )


@pytest.mark.parametrize("name,task", CASES)
def test_degenerate_features_stay_finite(name: str, task: str) -> None:
    rng = np.random.default_rng(6)
    labels = np.arange(20) % 3
    wide = rng.normal(size=(20, 300))  # d > n
    wide[:, :50] = 0.0  # constant columns
    wide[:, 50:60] = 7.0
    constant = np.full((20, 5), 3.0)
    for feats in (wide, constant):
        y = targets_for(task, wide, labels)
        assert np.isfinite(compute(name, task, feats, y))


def test_score_reports_misuse() -> None:
    x, labels = digits()
    with pytest.raises(UnknownNameError, match="Did you mean 'logme'"):
        score("logm", features=x, targets=labels)
    with pytest.raises(ConfigError, match="needs source_probs"):
        score("leep", features=x, targets=labels)
    with pytest.raises(ConfigError, match="not regression; pick one of logme"):
        score("hscore", features=x, targets=labels.astype(float), task="regression")
    assert names_for("regression") == ["logme"]
    assert names_for("classification", needs="source_probs") == ["leep", "nce"]


@pytest.mark.parametrize("name", SCORES.names())
def test_every_score_ranks_a_text_encoder_on_real_texts(name: str, bbc_dir: object) -> None:
    """On texts each score gives a finite value, or (no source classifier) says why not."""
    import math
    import warnings

    from graft.errors import BackboneError
    from graft.testing import tiny_text_backbone
    from graft.workflows.measure import rank

    try:
        backbone = tiny_text_backbone()
    except BackboneError as e:
        pytest.skip(str(e))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # texts longer than 32 tokens are cut
        (row,) = rank(bbc_dir, backbones=[backbone], score=name).rows  # type: ignore[arg-type]
    if SCORES.get(name).needs == "features":
        assert row.score is not None and math.isfinite(row.score), row.note
    else:
        assert row.score is None and "classifier" in row.note
    assert row.dim == 32 and row.computed + row.reused == 51  # train + val of 60 articles
