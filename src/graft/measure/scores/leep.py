"""LEEP: log expected empirical prediction through the source classifier.

Nguyen, Hassner, Seeger, Archambeau. "LEEP: A New Measure to Evaluate Transferability of
Learned Representations", ICML 2020.
"""

from __future__ import annotations

import numpy as np

from graft.measure.scores.base import Task, as_labels, as_probs, register_score


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP: mean log-likelihood of the "dummy" classifier built on the source predictions.

    With ``theta(x)`` the source classifier's probabilities, the empirical joint
    ``P(y, z) = 1/n sum_{i: y_i = y} theta(x_i)_z`` gives ``P(y | z)``, and
    ``LEEP = 1/n sum_i log sum_z P(y_i | z) theta(x_i)_z``.

    Args:
        source_probs: softmax output of the backbone's original classifier.
        labels: target class indices.

    Shape:
        source_probs: ``(n, n_source_classes)``, rows summing to 1; labels: ``(n,)``.

    Returns:
        A value ``<= 0``; higher (closer to 0) means better transfer.

    Example:
        >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
        >>> round(leep(p, np.array([0, 0, 1])), 4)
        -0.2449
    """
    y = as_labels(labels, np.asarray(source_probs).shape[0], "labels")
    p = as_probs(source_probs, y.shape[0])
    n = y.shape[0]
    one_hot = np.eye(int(y.max()) + 1)[y]
    joint = one_hot.T @ p / n  # (target classes, source classes)
    marginal = joint.sum(axis=0)
    # A source class no sample puts mass on has P(z) = 0 and contributes nothing below.
    cond = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    expected = np.einsum("iz,iz->i", p, cond[y])
    tiny = np.finfo(np.float64).tiny
    return float(np.mean(np.log(np.maximum(expected, tiny))))


@register_score(
    "leep",
    needs="source_probs",
    tasks=("classification",),
    citation="Nguyen et al., LEEP: A New Measure to Evaluate Transferability of Learned "
    "Representations, ICML 2020",
)
def _leep_score(source_probs: np.ndarray, targets: np.ndarray, task: Task) -> float:
    return leep(source_probs, targets)
