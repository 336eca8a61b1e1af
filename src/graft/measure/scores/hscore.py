"""H-score and its shrinkage-regularised form.

Bao, Li, Huang, Zheng, Tong. "An Information-Theoretic Approach to Transferability in Task
Transfer Learning", ICIP 2019 (H-score). Ibrahim, Ponomareva, Mazumder. "Newer is not always
better: Rethinking transferability metrics, their peculiarities, stability and performance",
ECML-PKDD 2022 / arXiv:2110.06893 (shrinkage H-score).
"""

from __future__ import annotations

import numpy as np

from graft.measure.scores.base import Task, as_labels, as_matrix, eigh_psd, register_score


def hscore(features: np.ndarray, labels: np.ndarray, *, shrinkage: bool = False) -> float:
    """H-score: ``tr(cov(f)^+ cov(E[f | y]))``, how much of the feature variance the classes explain.

    With ``shrinkage=True`` the feature covariance is replaced by its Ledoit-Wolf estimate
    ``(1 - a) cov(f) + a mu I`` and the between-class covariance is scaled by ``1 - a``
    (Ibrahim et al.), which keeps the score meaningful with few samples per dimension, where
    the plain pseudo-inverse over-fits.

    Args:
        features: backbone features.
        labels: target class indices.
        shrinkage: use the Ledoit-Wolf shrunk covariance.

    Shape:
        features: ``(n, d)``; labels: ``(n,)``.

    Returns:
        A value ``>= 0``, at most ``C - 1`` for ``C`` classes without shrinkage; higher means
        better transfer.

    Example:
        >>> f = np.array([[0.0, 1.0], [0.2, 1.0], [1.0, 0.0], [1.2, 0.1]])
        >>> round(hscore(f, np.array([0, 0, 1, 1])), 3)  # at most C - 1 = 1
        0.998
    """
    f = as_matrix(features, "features")
    n, d = f.shape
    y = as_labels(labels, n, "labels")
    centered = f - f.mean(axis=0)
    cov = centered.T @ centered / (n - 1)
    one_hot = np.eye(int(y.max()) + 1)[y]
    counts = one_hot.sum(axis=0)
    means = one_hot.T @ centered / counts[:, None]  # class means minus the overall mean, (C, d)
    scale = 1.0
    if shrinkage:
        a = ledoit_wolf_shrinkage(centered)
        mu = np.trace(cov) / d
        cov = (1.0 - a) * cov + a * mu * np.eye(d)
        scale = 1.0 - a
    values, vectors = eigh_psd(cov)
    proj = means @ vectors  # (C, k)
    # tr(cov^+ cov_g) with cov_g = sum_c n_c m_c m_c^T / (n - 1), the np.cov of E[f | y].
    between = (counts[:, None] * proj**2 / values).sum() / (n - 1)
    return float(scale * between)


def ledoit_wolf_shrinkage(centered: np.ndarray) -> float:
    """Ledoit-Wolf shrinkage intensity for already-centered samples, in ``[0, 1]``.

    The same estimate as ``sklearn.covariance.ledoit_wolf_shrinkage(..., assume_centered=True)``
    (Ledoit & Wolf, "A well-conditioned estimator for large-dimensional covariance matrices",
    J. Multivariate Analysis 2004), written with one ``d x d`` product.

    Shape:
        centered: ``(n, d)``.
    """
    n, d = centered.shape
    emp = centered.T @ centered / n
    mu = np.trace(emp) / d
    row_sq = (centered**2).sum(axis=1)
    # beta: variance of the sample outer products around emp; delta: distance of emp to mu I.
    beta = ((row_sq**2).sum() / n - (emp**2).sum()) / (n * d)
    delta = ((emp**2).sum() - 2.0 * mu * np.trace(emp) + d * mu**2) / d
    if delta <= 0:
        return 0.0  # emp is already a multiple of I: nothing to shrink towards
    return float(min(max(beta, 0.0), delta) / delta)


@register_score(
    "hscore",
    needs="features",
    tasks=("classification",),
    citation="Bao et al., An Information-Theoretic Approach to Transferability in Task "
    "Transfer Learning, ICIP 2019",
)
def _hscore_score(features: np.ndarray, targets: np.ndarray, task: Task) -> float:
    return hscore(features, targets)


@register_score(
    "hscore_shrinkage",
    needs="features",
    tasks=("classification",),
    citation="Ibrahim et al., Newer is not always better: Rethinking transferability "
    "metrics, their peculiarities, stability and performance, arXiv:2110.06893",
)
def _hscore_shrinkage_score(features: np.ndarray, targets: np.ndarray, task: Task) -> float:
    return hscore(features, targets, shrinkage=True)
