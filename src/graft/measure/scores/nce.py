"""NCE: negative conditional entropy of the target labels given the source labels.

Tran, Nguyen, Hassner. "Transferability and Hardness of Supervised Classification Tasks",
ICCV 2019.
"""

from __future__ import annotations

import numpy as np

from graft.errors import DataError
from graft.measure.scores.base import Task, as_labels, as_probs, register_score


def nce(source_labels: np.ndarray, target_labels: np.ndarray) -> float:
    """NCE: ``-H(Y | Z)`` from the empirical joint of source labels ``Z`` and targets ``Y``.

    ``H(Y | Z) = -sum_{y,z} P(y, z) log P(y | z)`` with probabilities estimated by counting.
    Hard source labels are usually the argmax of the source classifier's probabilities.

    Args:
        source_labels: source-task label of each sample (any hashable integers).
        target_labels: target class of each sample.

    Shape:
        source_labels: ``(n,)``; target_labels: ``(n,)``.

    Returns:
        A value ``<= 0``; 0 when the source label determines the target label.

    Example:
        >>> nce(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))
        0.0
    """
    z = np.asarray(source_labels)
    if z.ndim != 1:
        raise DataError(f"source_labels must have shape (n,), got {z.shape}")
    y = as_labels(target_labels, z.shape[0], "target_labels")
    _, z_idx = np.unique(z, return_inverse=True)
    shape = (int(y.max()) + 1, int(z_idx.max()) + 1)
    flat = np.ravel_multi_index((y, z_idx.reshape(-1)), shape)
    joint = np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape) / y.shape[0]
    cond = joint / joint.sum(axis=0, keepdims=True)  # every column has at least one sample
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(cond[nz])))


@register_score(
    "nce",
    needs="source_probs",
    tasks=("classification",),
    citation="Tran et al., Transferability and Hardness of Supervised Classification Tasks, "
    "ICCV 2019",
)
def _nce_score(source_probs: np.ndarray, targets: np.ndarray, task: Task) -> float:
    n = np.asarray(source_probs).shape[0]
    return nce(np.argmax(as_probs(source_probs, n), axis=1), targets)
