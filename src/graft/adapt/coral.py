"""Deep CORAL: match the second-order statistics of source and target features.

Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV Workshops
2016.
"""

from __future__ import annotations

import torch

from graft.adapt.alignment import Alignment
from graft.adapt.registry import ADAPTERS, check_non_negative, check_pair


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased feature covariance, as in the paper (divides by ``n − 1``).

    Shape:
        - Input: ``(n, d)`` with ``n >= 2``; Output: ``(d, d)``.
    """
    centered = x - x.mean(0, keepdim=True)
    return centered.T @ centered / (len(x) - 1)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖C_s − C_t‖²_F / (4 d²)``, computed in float32.

    Shape:
        - source: ``(n_source, d)``, target: ``(n_target, d)``, each with at least 2 rows.
        - Output: a scalar.
    """
    check_pair("coral", source, target, min_rows=2)
    d = source.shape[1]
    diff = covariance(source.float()) - covariance(target.float())
    return diff.pow(2).sum() / (4 * d * d)


@ADAPTERS.register("coral")
class CORAL(Alignment):
    """:func:`coral_loss` as an adapter; the metric ``coral`` is the unweighted loss.

    Args:
        feature_dim: width of the backbone features (kept for the artifact).
        weight: multiplies the returned loss.
    """

    def __init__(self, feature_dim: int, weight: float = 1.0) -> None:
        super().__init__()
        check_non_negative("coral", weight=weight)
        self.feature_dim, self.weight = feature_dim, weight

    def forward(
        self, source_feats: torch.Tensor, target_feats: torch.Tensor, progress: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        loss = coral_loss(source_feats, target_feats)
        return self.weight * loss, {"coral": float(loss.detach())}
