"""Multi-kernel maximum mean discrepancy between source and target features.

Long et al., "Learning Transferable Features with Deep Adaptation Networks" (DAN), ICML 2015;
the estimators are from Gretton et al., "A Kernel Two-Sample Test", JMLR 2012.
"""

from __future__ import annotations

import torch

from graft.adapt.alignment import Alignment
from graft.adapt.registry import ADAPTERS, check_non_negative, check_pair
from graft.errors import ConfigError

ESTIMATORS = ("biased", "linear")


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``‖a_i − b_j‖²`` for every pair, without the ``(n, m, d)`` intermediate.

    Shape:
        - a: ``(n, d)``, b: ``(m, d)``; Output: ``(n, m)``.
    """
    sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T
    return sq.clamp_min(0)


def _kernel_sum(
    sq: torch.Tensor, base: torch.Tensor, kernel_mul: float, kernel_num: int
) -> torch.Tensor:
    return sum(torch.exp(-sq / (base * kernel_mul**i)) for i in range(kernel_num))  # type: ignore[return-value]


def mmd_loss(
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    kernel_mul: float = 2.0,
    kernel_num: int = 5,
    estimator: str = "biased",
) -> torch.Tensor:
    """Squared MMD with a sum of ``kernel_num`` Gaussian kernels, computed in float32.

    Bandwidths are ``σ² · kernel_mul^(i − kernel_num // 2)`` for ``i < kernel_num``, with σ² the
    mean squared distance between distinct samples of the pooled batch (detached: a heuristic,
    not something to optimise), as in DAN's family of kernels.

    * ``biased``: the V-statistic ``mean K_ss + mean K_tt − 2 mean K_st`` over all pairs,
      O(n²); non-negative, exactly 0 for identical batches; any batch sizes.
    * ``linear``: Gretton et al.'s linear-time unbiased estimate over disjoint pairs
      ``(s₁, s₂, t₁, t₂)``, O(n), used by DAN for large batches; needs two rows per domain and
      uses the first ``2 * (min(n_s, n_t) // 2)`` of each; can be slightly negative.

    Shape:
        - source: ``(n_source, d)``, target: ``(n_target, d)``; Output: a scalar.
    """
    if estimator not in ESTIMATORS:
        raise ConfigError(f"mmd estimator={estimator!r}: choose one of {', '.join(ESTIMATORS)}")
    check_pair("mmd", source, target, min_rows=2 if estimator == "linear" else 1)
    s, t = source.float(), target.float()
    if estimator == "linear":
        m = 2 * (min(len(s), len(t)) // 2)
        s1, s2, t1, t2 = s[0:m:2], s[1:m:2], t[0:m:2], t[1:m:2]
        pairs = [(s1, s2), (t1, t2), (s1, t2), (s2, t1)]
        sq = [(a - b).pow(2).sum(1) for a, b in pairs]
        base = _base_bandwidth(torch.cat(sq).detach().mean(), kernel_mul, kernel_num)
        ks = [_kernel_sum(d, base, kernel_mul, kernel_num) for d in sq]
        return (ks[0] + ks[1] - ks[2] - ks[3]).mean()
    joint = torch.cat([s, t])
    sq_all = squared_distances(joint, joint)
    n = len(joint)
    mean_sq = sq_all.detach().sum() / max(n * n - n, 1)
    k = _kernel_sum(
        sq_all, _base_bandwidth(mean_sq, kernel_mul, kernel_num), kernel_mul, kernel_num
    )
    ns = len(s)
    return k[:ns, :ns].mean() + k[ns:, ns:].mean() - 2 * k[:ns, ns:].mean()


def _base_bandwidth(mean_sq: torch.Tensor, kernel_mul: float, kernel_num: int) -> torch.Tensor:
    # Guard against a batch of identical points (σ² = 0), which would divide by zero.
    return mean_sq.clamp_min(1e-12) / kernel_mul ** (kernel_num // 2)


@ADAPTERS.register("mmd")
class MMD(Alignment):
    """:func:`mmd_loss` as an adapter (DAN's multi-kernel MMD); metric ``mmd`` is unweighted.

    Args:
        feature_dim: width of the backbone features (kept for the artifact).
        kernel_mul: ratio between neighbouring bandwidths.
        kernel_num: number of Gaussian kernels.
        estimator: ``biased`` or ``linear``.
        weight: multiplies the returned loss.
    """

    def __init__(
        self,
        feature_dim: int,
        kernel_mul: float = 2.0,
        kernel_num: int = 5,
        estimator: str = "biased",
        weight: float = 1.0,
    ) -> None:
        super().__init__()
        check_non_negative("mmd", weight=weight)
        if kernel_num < 1 or kernel_mul <= 0:
            raise ConfigError("mmd needs kernel_num >= 1 and kernel_mul > 0")
        if estimator not in ESTIMATORS:
            raise ConfigError(f"mmd estimator={estimator!r}: choose one of {', '.join(ESTIMATORS)}")
        self.feature_dim, self.kernel_mul, self.kernel_num = feature_dim, kernel_mul, kernel_num
        self.estimator, self.weight = estimator, weight

    def forward(
        self, source_feats: torch.Tensor, target_feats: torch.Tensor, progress: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        loss = mmd_loss(
            source_feats,
            target_feats,
            kernel_mul=self.kernel_mul,
            kernel_num=self.kernel_num,
            estimator=self.estimator,
        )
        return self.weight * loss, {"mmd": float(loss.detach())}
