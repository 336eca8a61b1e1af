"""The gradient reversal layer: identity forward, gradient multiplied by −coeff backward.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class GradientReverseFunction(torch.autograd.Function):
    """``y = x``; ``dL/dx = −coeff * dL/dy``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.neg() * ctx.coeff, None


def reverse_gradient(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """``x`` unchanged, with its gradient negated and scaled by ``coeff`` on the way back."""
    return GradientReverseFunction.apply(x, float(coeff))


def grl_coeff(progress: float, *, max_coeff: float = 1.0, gamma: float = 10.0) -> float:
    """DANN's warm start: ``max_coeff * (2 / (1 + exp(−gamma * p)) − 1)``, 0 at p=0, ~1 at p=1.

    Ganin & Lempitsky (2015) ramp the reversal strength this way so the noisy discriminator of
    the first steps does not disturb the features.

    Args:
        progress: fraction of training done, clipped to [0, 1].
        max_coeff: the value approached at the end.
        gamma: steepness (paper: 10).
    """
    p = min(max(float(progress), 0.0), 1.0)
    return max_coeff * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class GradientReversal(nn.Module):
    """Gradient reversal with a fixed coefficient.

    Shape:
        - Input: any; Output: the same.
    """

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"


class WarmStartGRL(nn.Module):
    """Gradient reversal whose coefficient follows :func:`grl_coeff` of the training progress.

    Progress is passed in (not counted internally), so resuming from a checkpoint and changing
    the number of steps give the same schedule.
    """

    def __init__(self, max_coeff: float = 1.0, gamma: float = 10.0) -> None:
        super().__init__()
        self.max_coeff, self.gamma = max_coeff, gamma

    def coeff(self, progress: float) -> float:
        return grl_coeff(progress, max_coeff=self.max_coeff, gamma=self.gamma)

    def forward(self, x: torch.Tensor, progress: float) -> torch.Tensor:
        return reverse_gradient(x, self.coeff(progress))

    def extra_repr(self) -> str:
        return f"max_coeff={self.max_coeff}, gamma={self.gamma}"
