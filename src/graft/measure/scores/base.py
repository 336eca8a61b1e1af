"""The score registry, its calling contract and the input checks every score shares.

Each transferability score is a pure function on NumPy arrays in its own file, registered with
:func:`register_score`. The registry holds a :class:`ScoreSpec` per score so that ``rank`` and
the advisor can loop over all of them without knowing their signatures::

    from graft.measure.scores import SCORES, score
    for name, spec in SCORES.items():
        if "classification" in spec.tasks:
            value = score(name, features=f, source_probs=p, targets=y, task="classification")

Every score is "higher = better transfer" and is computed in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from graft._registry import Registry
from graft.errors import ConfigError, DataError

Task = Literal["classification", "regression"]
Needs = Literal["features", "source_probs"]
TASKS: tuple[str, ...] = ("classification", "regression")

#: The uniform contract: ``fn(inputs, targets, task) -> float`` where ``inputs`` is the
#: feature matrix or the source classifier's probabilities, as ``ScoreSpec.needs`` says.
ScoreFn = Callable[[np.ndarray, np.ndarray, Task], float]


@dataclass(frozen=True)
class ScoreSpec:
    """One registered score.

    Args:
        name: registry key (lower snake_case).
        fn: ``fn(inputs, targets, task) -> float``; higher means better transfer.
        needs: ``features`` (the backbone's pooled features) or ``source_probs`` (softmax
            output of the backbone's original classifier).
        tasks: the target kinds the score is defined for.
        citation: the paper that introduced it.
    """

    name: str
    fn: ScoreFn
    needs: Needs
    tasks: frozenset[str]
    citation: str

    def __post_init__(self) -> None:
        if self.needs not in ("features", "source_probs"):
            raise ValueError(f"score {self.name!r}: needs must be 'features' or 'source_probs'")
        if not self.tasks or not self.tasks <= set(TASKS):
            raise ValueError(f"score {self.name!r}: tasks must be a non-empty subset of {TASKS}")


SCORES: Registry[ScoreSpec] = Registry("score")


def register_score(
    name: str, *, needs: Needs, tasks: tuple[str, ...], citation: str
) -> Callable[[ScoreFn], ScoreFn]:
    """Register ``fn(inputs, targets, task) -> float`` as a score; returns ``fn`` unchanged."""

    def decorator(fn: ScoreFn) -> ScoreFn:
        spec = ScoreSpec(SCORES.normalize(name), fn, needs, frozenset(tasks), citation)
        SCORES.register(name)(spec)
        return fn

    return decorator


def score(
    name: str,
    *,
    targets: np.ndarray,
    task: Task = "classification",
    features: np.ndarray | None = None,
    source_probs: np.ndarray | None = None,
) -> float:
    """Compute the registered score ``name`` with the inputs it needs.

    Args:
        name: a registered score (``graft.measure.scores.SCORES.names()``).
        targets: class indices ``(n,)`` for classification, values ``(n,)`` or ``(n, k)`` for
            regression.
        task: ``classification`` or ``regression``.
        features: the backbone's features ``(n, d)``; needed by feature-based scores.
        source_probs: the source classifier's probabilities ``(n, n_source_classes)``; needed
            by LEEP and NCE.

    Returns:
        The score; higher means better expected transfer.
    """
    spec = SCORES.get(name)
    if task not in spec.tasks:
        raise ConfigError(
            f"score {spec.name!r} is defined for {'/'.join(sorted(spec.tasks))} targets, "
            f"not {task}; pick one of {', '.join(names_for(task)) or '(none)'}"
        )
    inputs = features if spec.needs == "features" else source_probs
    if inputs is None:
        raise ConfigError(f"score {spec.name!r} needs {spec.needs}=...; it was not given")
    return float(spec.fn(inputs, targets, task))


def names_for(task: str, needs: str | None = None) -> list[str]:
    """Registered scores defined for ``task`` (and, if given, computed from ``needs``)."""
    return [n for n, s in SCORES.items() if task in s.tasks and (needs is None or s.needs == needs)]


def as_matrix(x: np.ndarray, arg: str) -> np.ndarray:
    """``x`` as a finite float64 ``(n, d)`` matrix, or a :class:`DataError` naming ``arg``."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise DataError(f"{arg} must be a 2-D array (samples, dims), got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 1:
        raise DataError(f"{arg} needs at least 2 samples and 1 dimension, got shape {a.shape}")
    if not np.isfinite(a).all():
        rows = np.flatnonzero(~np.isfinite(a).all(axis=1))
        raise DataError(
            f"{arg} has NaN or infinite values in {rows.size} rows (first: row {rows[0]}); "
            "drop those samples or recompute their features"
        )
    return a


def as_labels(y: np.ndarray, n: int, arg: str = "targets") -> np.ndarray:
    """Class labels as ``0..C-1`` int64 indices ``(n,)``; needs at least two classes."""
    a = np.asarray(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.shape[0] != n:
        raise DataError(f"{arg} must have shape ({n},) (one class per sample), got {a.shape}")
    if a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
        raise DataError(f"{arg} holds non-integer values; classification needs class indices")
    classes, idx = np.unique(a, return_inverse=True)
    if classes.size < 2:
        raise DataError(f"{arg} has a single class ({classes[0]!r}); a score needs two or more")
    return idx.astype(np.int64).reshape(n)


def as_regression_targets(y: np.ndarray, n: int, arg: str = "targets") -> np.ndarray:
    """Regression targets as float64 ``(n, k)``, each column standardized to mean 0, std 1."""
    a = np.asarray(y, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n:
        raise DataError(f"{arg} must have shape ({n},) or ({n}, k), got {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{arg} has NaN or infinite values; drop those rows first")
    std = a.std(axis=0)
    flat = np.flatnonzero(std <= 1e-12 * np.maximum(np.abs(a).max(axis=0), 1.0))
    if flat.size:
        raise DataError(
            f"{arg} column {int(flat[0])} is constant; it says nothing about transfer — drop it"
        )
    return (a - a.mean(axis=0)) / std


def as_probs(p: np.ndarray, n: int, arg: str = "source_probs") -> np.ndarray:
    """Source probabilities ``(n, Z)`` in float64, rows renormalized to sum to one."""
    a = as_matrix(p, arg)
    if a.shape[0] != n:
        raise DataError(f"{arg} has {a.shape[0]} rows but targets have {n}")
    if (a < 0).any():
        raise DataError(f"{arg} has negative values: these look like logits; apply a softmax first")
    sums = a.sum(axis=1)
    if np.abs(sums - 1.0).max() > 1e-3:
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise DataError(
            f"{arg} rows must sum to 1 (row {row} sums to {sums[row]:.4g}); pass the "
            "softmax probabilities of the source classifier, not logits or scores"
        )
    return a / sums[:, None]


def eigh_psd(gram: np.ndarray, rtol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a symmetric PSD matrix, keeping only the numerically non-zero ones.

    Eigenvalues below ``rtol * max`` are rounding noise (constant columns, more dimensions
    than samples); dropping them keeps inverses finite and the result deterministic.

    Returns:
        ``(values, vectors)`` with values descending, shapes ``(k,)`` and ``(d, k)``.
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # One BLAS thread: the tridiagonal reduction is memory-bound, and OpenBLAS threads spin
    # against each other on a busy machine (1280 x 1280 on the shared 2-core box: 0.9 s on one
    # thread, 24-32 s on two). The matrix products around it keep their threads.
    with threadpool_limits(limits=1, user_api="blas"):
        values, vectors = np.linalg.eigh(gram)
    values, vectors = values[::-1], vectors[:, ::-1]
    top = values[0] if values.size else 0.0
    if rtol is None:
        rtol = gram.shape[0] * np.finfo(np.float64).eps
    keep = values > max(top, 0.0) * rtol
    if top <= 0:
        keep[:] = False
    return values[keep], vectors[:, keep]
