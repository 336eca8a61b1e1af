"""DANN: a domain discriminator trained through a gradient reversal layer.

Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016 (first published as
Ganin & Lempitsky, ICML 2015).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from graft.adapt.alignment import Alignment
from graft.adapt.grl import WarmStartGRL
from graft.adapt.registry import ADAPTERS, check_non_negative, check_pair


class DomainDiscriminator(nn.Sequential):
    """``(Linear → ReLU → Dropout) × 2 → Linear`` to one logit: "is this a source sample?".

    Shape:
        - Input: ``(batch, feature_dim)``; Output: ``(batch, 1)``.
    """

    def __init__(self, feature_dim: int, hidden: int = 1024, dropout: float = 0.5) -> None:
        super().__init__(
            nn.Linear(feature_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )


@ADAPTERS.register("dann")
class DomainAdversarialLoss(Alignment):
    """Binary cross-entropy of a domain discriminator, with the features' gradient reversed.

    Minimising this loss trains the discriminator to tell the domains apart, while the reversed
    gradient trains the backbone to make them indistinguishable. Source and target terms are
    averaged separately, so unequal batch sizes do not tilt the discriminator.

    Args:
        feature_dim: width of the backbone features.
        hidden: width of the discriminator's hidden layers.
        dropout: dropout in the discriminator.
        max_coeff: final reversal strength (see :func:`~graft.adapt.grl.grl_coeff`).
        gamma: steepness of the reversal warm-up.
        weight: multiplies the returned loss.

    Shape:
        - source_feats: ``(n_source, feature_dim)``; target_feats: ``(n_target, feature_dim)``.
        - Output: a scalar loss and ``{"domain_loss", "domain_acc", "grl_coeff"}``.
    """

    def __init__(
        self,
        feature_dim: int,
        hidden: int = 1024,
        dropout: float = 0.5,
        max_coeff: float = 1.0,
        gamma: float = 10.0,
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        check_non_negative("dann", hidden=hidden, max_coeff=max_coeff, gamma=gamma, weight=weight)
        self.feature_dim, self.hidden, self.dropout = feature_dim, hidden, dropout
        self.max_coeff, self.gamma, self.weight = max_coeff, gamma, weight
        self.discriminator = DomainDiscriminator(feature_dim, hidden, dropout)
        self.grl = WarmStartGRL(max_coeff, gamma)

    def forward(
        self, source_feats: torch.Tensor, target_feats: torch.Tensor, progress: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        check_pair("dann", source_feats, target_feats)
        n = len(source_feats)
        feats = self.grl(torch.cat([source_feats, target_feats]).float(), progress)
        logits = self.discriminator(feats).squeeze(1)
        is_source = torch.zeros_like(logits)
        is_source[:n] = 1.0
        bce = F.binary_cross_entropy_with_logits(logits, is_source, reduction="none")
        loss = 0.5 * (bce[:n].mean() + bce[n:].mean())
        with torch.no_grad():
            right = ((logits > 0).float() == is_source).float()
            acc = 0.5 * (right[:n].mean() + right[n:].mean())
        metrics = {
            "domain_loss": float(loss.detach()),
            "domain_acc": float(acc),
            "grl_coeff": self.grl.coeff(progress),
        }
        return self.weight * loss, metrics
