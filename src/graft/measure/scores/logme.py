"""LogME: the log marginal evidence of a Bayesian linear model on the features.

You, Liu, Wang, Long. "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021 (and the fixed-point form of its JMLR 2022 extension, "Ranking and
Tuning Pre-trained Models").
"""

from __future__ import annotations

import numpy as np

from graft.measure.scores.base import (
    Task,
    as_labels,
    as_matrix,
    as_regression_targets,
    eigh_psd,
    register_score,
)

# Eigenvalues of a Gram matrix below this fraction of the largest are rounding noise: their
# eigenvectors are not orthonormal to working precision, which would corrupt the projections.
_GRAM_RTOL = 1e-10
# As in the official implementation: keeps alpha and beta finite when a target is fitted
# exactly (more dimensions than samples) or is orthogonal to every feature direction.
_EPS = 1e-5


def logme(features: np.ndarray, targets: np.ndarray, *, regression: bool = False) -> float:
    """LogME: mean log evidence per sample of a Bayesian linear model, averaged over targets.

    For each target column ``y`` (one-hot class indicator, or a regression target) the model
    is ``y = F w + noise`` with prior ``w ~ N(0, 1/alpha)`` and noise precision ``beta``; LogME is
    the log marginal likelihood at the ``(alpha, beta)`` that maximise it, divided by ``n``.
    One eigendecomposition of the feature Gram matrix is shared by every target; each target
    then needs only a fixed-point loop on ``O(min(n, d))`` numbers (the paper's Algorithm 2).

    Regression targets are standardized per column, so their units do not shift the score
    (scaling a target by ``c`` would otherwise subtract ``log c``). Features are used as given:
    the evidence is invariant to their scale.

    Args:
        features: backbone features.
        targets: class indices, or regression values (one or more columns).
        regression: treat ``targets`` as real values instead of class indices.

    Shape:
        features: ``(n, d)``; targets: ``(n,)`` class indices, or ``(n,)`` / ``(n, k)`` values.

    Returns:
        Mean evidence per sample; higher means better transfer. Comparable across backbones
        on the same targets, not across datasets.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 200)
        >>> good = np.eye(3)[y] + 0.1 * rng.normal(size=(200, 3))
        >>> logme(good, y) > logme(rng.normal(size=(200, 3)), y)
        True
    """
    f = as_matrix(features, "features")
    n, d = f.shape
    if regression:
        y = as_regression_targets(targets, n)
    else:
        labels = as_labels(targets, n)
        y = np.eye(int(labels.max()) + 1)[labels]
    # The evidence is invariant to the feature scale, but the _EPS guards are not: bring
    # the features to a unit mean squared row norm first.
    norm = np.sqrt((f**2).sum() / n)
    sigma, x2, res_x2 = _spectrum(f / norm if norm > 0 else f, y)
    alpha, beta = _fixed_point(sigma, x2, res_x2, n)
    evidence = _log_evidence(alpha, beta, sigma, x2, res_x2, n, d)
    return float(np.mean(evidence) / n)


def _spectrum(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared singular values of ``f`` and the targets' energy along each singular direction.

    Uses the smaller Gram matrix (``d x d`` or ``n x n``), so the cost is
    ``O(n d min(n, d))`` whatever the shape.

    Returns:
        ``sigma (k,)``, ``x2 (k, t)`` = ``(U^T y)^2`` and ``res_x2 (t,)`` = the part of
        ``|y|^2`` outside the column space of ``f``.
    """
    n, d = f.shape
    if n >= d:
        sigma, v = eigh_psd(f.T @ f, _GRAM_RTOL)
        x = (v.T @ (f.T @ y)) / np.sqrt(sigma)[:, None]
    else:
        sigma, u = eigh_psd(f @ f.T, _GRAM_RTOL)
        x = u.T @ y
    x2 = x**2
    res_x2 = np.maximum((y**2).sum(axis=0) - x2.sum(axis=0), 0.0)
    return sigma, x2, res_x2


def _fit_terms(
    t: np.ndarray, sigma: np.ndarray, x2: np.ndarray, res_x2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``gamma`` (effective parameters), ``|m|^2`` and ``|y - F m|^2`` at ``t = alpha/beta``."""
    s = sigma[:, None]
    shrink = s / (s + t)
    gamma = shrink.sum(axis=0)
    m2 = (s * x2 / (s + t) ** 2).sum(axis=0)
    res2 = (x2 * (1.0 - shrink) ** 2).sum(axis=0) + res_x2
    return gamma, m2, res2


def _fixed_point(
    sigma: np.ndarray,
    x2: np.ndarray,
    res_x2: np.ndarray,
    n: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """MacKay's fixed-point updates of ``alpha`` and ``beta``, all targets at once.

    A target stops updating once ``alpha/beta`` moves by less than ``tol`` (relative);
    the loop usually converges in a handful of steps.
    """
    t_count = x2.shape[1]
    alpha, beta = np.ones(t_count), np.ones(t_count)
    active = np.ones(t_count, dtype=bool)
    for _ in range(max_iter):
        t = alpha / beta
        gamma, m2, res2 = _fit_terms(t, sigma, x2, res_x2)
        new_alpha = np.maximum(gamma, _EPS) / (m2 + _EPS)
        new_beta = np.maximum(n - gamma, _EPS) / (res2 + _EPS)
        alpha = np.where(active, new_alpha, alpha)
        beta = np.where(active, new_beta, beta)
        active &= np.abs(alpha / beta - t) > tol * t
        if not active.any():
            break
    return alpha, beta


def _log_evidence(
    alpha: np.ndarray,
    beta: np.ndarray,
    sigma: np.ndarray,
    x2: np.ndarray,
    res_x2: np.ndarray,
    n: int,
    d: int,
) -> np.ndarray:
    """Log marginal likelihood ``log p(y | F, alpha, beta)`` per target.

    ``log |A|`` for ``A = alpha I + beta F^T F`` runs over all ``d`` eigenvalues: ``k`` of
    them are ``alpha + beta sigma`` and the other ``d - k`` are ``alpha`` (they matter when
    ``d > n``).
    """
    _, m2, res2 = _fit_terms(alpha / beta, sigma, x2, res_x2)
    k = sigma.size
    log_det = np.log(alpha + beta * sigma[:, None]).sum(axis=0) + (d - k) * np.log(alpha)
    return (
        0.5 * d * np.log(alpha)
        + 0.5 * n * np.log(beta)
        - 0.5 * log_det
        - 0.5 * beta * res2
        - 0.5 * alpha * m2
        - 0.5 * n * np.log(2 * np.pi)
    )


@register_score(
    "logme",
    needs="features",
    tasks=("classification", "regression"),
    citation="You et al., LogME: Practical Assessment of Pre-trained Models for Transfer "
    "Learning, ICML 2021",
)
def _logme_score(features: np.ndarray, targets: np.ndarray, task: Task) -> float:
    return logme(features, targets, regression=task == "regression")
