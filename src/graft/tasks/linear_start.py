"""A linear head fitted to convergence on stored features: where a frozen-backbone stage starts.

A head trained by a few epochs of stochastic gradient steps on small data stops far from its
optimum (on 8 BBC articles per topic graft's head reached 0.865 where scikit-learn's logistic
regression on the same embeddings reached 0.905). On stored features the full batch fits in
memory and the problem is convex, so :func:`fit_linear_head` solves it outright: L-BFGS on the
task's own loss (cross-entropy, binary cross-entropy, squared error on standardised targets,
with the task's class weights) plus an L2 penalty on the weights, on standardised features,
then folds the scaling into the layer. For classification that is the objective of
scikit-learn's ``LogisticRegression(C=1)`` on features centred and divided by one common scale
(their root-mean-square deviation), close to the advisor's linear probe (which standardises each
feature), so a frozen fit starts about where the probe measured. The stage's epochs then refine it, and the
stage keeps whichever validates best. Linear probing before fine-tuning also protects the
features (Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution", ICLR 2022).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

#: Inverse L2 strength on the scaled features (scikit-learn's ``C``; the probe's default).
C = 1.0
#: L-BFGS iterations at most (the problem is convex; most fits converge well before).
MAX_ITER = 300


@dataclass(frozen=True)
class LinearStart:
    """What :func:`fit_linear_head` did: the final objective and its iterations."""

    loss: float
    iterations: int


def linear_layers(head: nn.Module, dim: int) -> list[nn.Linear] | None:
    """The head's linear layers when the head is linear in its input, else None.

    Linear means: every leaf module is a ``Linear`` (with a bias) reading the ``dim`` features directly, a
    dropout or an identity (graft's :class:`~graft.tasks.base.Head`, and a multi-task head made
    of them). A head with a hidden layer is not solved in closed form.
    """
    found: list[nn.Linear] = []
    for module in head.modules():
        if isinstance(module, nn.Linear):
            if module.in_features != dim or module.bias is None:
                return None
            found.append(module)
        elif next(module.children(), None) is None and not isinstance(
            module, nn.Dropout | nn.Identity
        ):
            return None
    return found or None


def fit_linear_head(
    head: nn.Module,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    features: torch.Tensor,
    targets: torch.Tensor,
    *,
    c: float = C,
    max_iter: int = MAX_ITER,
) -> LinearStart | None:
    """Fit ``head`` in place to the minimum of ``loss`` + L2 on scaled ``features``.

    The penalty is ``|W|² / (2 c n)`` on every linear weight (never the bias), with features
    centred and divided by their root-mean-square deviation (one number for all features); the
    fitted layer reads the raw features (the scaling is folded into its weights and bias). Deterministic: the weights start
    at zero and L-BFGS uses no randomness. Returns None, leaving the head untouched, when the head
    is not linear (:func:`linear_layers`), a weight is frozen, or there are no rows.

    Shape:
        features: ``(n, dim)``; targets: what ``loss`` takes (the task's encoding).
    """
    if len(features) == 0:
        return None
    layers = linear_layers(head, features.shape[1])
    if layers is None:
        return None
    x = features.detach().float()
    mean = x.mean(dim=0)
    # One common scale (the features' root-mean-square deviation), not one per feature: the
    # penalty does not depend on the backbone's feature scale, and a feature that hardly varies
    # in training is not magnified (per-feature standardisation gave weights in the hundreds on
    # such features, and the first fine-tuning step after it a loss of 100).
    scale = float(x.var(dim=0, unbiased=False).mean().sqrt())
    scale = scale if scale > 1e-12 else 1.0
    z = (x - mean) / scale
    n = len(x)
    params = [p for layer in layers for p in layer.parameters()]
    if not all(p.requires_grad for p in params):
        return None
    was_training = head.training
    head.eval()  # no dropout: the objective is deterministic
    before = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.zero_()
    optimizer = torch.optim.LBFGS(
        params, lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-6, tolerance_change=1e-10,
    )  # fmt: skip
    iterations = 0

    def objective() -> torch.Tensor:
        nonlocal iterations
        iterations += 1
        optimizer.zero_grad()
        penalty = sum(layer.weight.pow(2).sum() for layer in layers) / (2 * c * n)
        value = loss(head(z), targets) + penalty
        value.backward()
        return value

    try:
        if not torch.isfinite(z).all():
            raise ValueError("non-finite features")
        with torch.enable_grad():
            optimizer.step(objective)
        with torch.no_grad():
            final = float(loss(head(z), targets))
            if not all(torch.isfinite(p).all() for p in params) or final != final:
                raise ValueError("the fit diverged")
            for layer in layers:  # W z + b = (W / scale) x + (b - (W / scale) mean)
                layer.weight.div_(scale)
                layer.bias.sub_(layer.weight @ mean)
    except (ValueError, RuntimeError):  # NaN or inf in the data: the epochs report it
        with torch.no_grad():
            for p, old in zip(params, before, strict=True):
                p.copy_(old)
        return None
    finally:
        optimizer.zero_grad(set_to_none=True)
        head.train(was_training)
    return LinearStart(loss=final, iterations=iterations)
