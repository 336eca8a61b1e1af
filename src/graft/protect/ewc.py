"""Elastic Weight Consolidation: a pull toward the pretrained weights, weighted by importance.

Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 2017.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from graft.backbones.base import Backbone
from graft.errors import ConfigError
from graft.progress import beating
from graft.protect.l2sp import drift
from graft.protect.params import backbone_of, backbone_params, device_of, first_item, snapshot
from graft.protect.penalty import Penalty
from graft.protect.registry import REGULARIZERS

FISHER_MODES = ("auto", "sampled", "empirical")
NORMALIZE = ("max", "mean", "none")


@REGULARIZERS.register("ewc")
@dataclass(eq=False, kw_only=True)
class EWC(Penalty):
    """``lam/2 * Σ_i F_i (θ_i − θ*_i)²`` over the backbone, with F the diagonal Fisher at θ*.

    The Fisher is measured once in :meth:`anchor` (the loop's :meth:`setup` calls it at the
    first stage that tunes the backbone, on Accelerate's device), with the model in eval mode, on
    at most ``samples`` inputs of ``reference_loader``: source-like images when you have them,
    else the target training images. Each group of ``batch`` inputs costs one backward pass of
    its *summed* negative log-likelihood, and ``F ≈ Σ_groups g² / samples``
    (:func:`fisher_diagonal`): the cost of one training pass over ``samples`` images (it was a
    per-sample pass, 15 times the cost of a whole plain fit on the forgetting benchmark).
    With sampled labels this is unbiased: under the model's own predictive distribution each
    sample's score has mean zero, so the cross terms of ``g²`` vanish in expectation. With
    empirical labels it adds ``(batch - 1)`` times the squared mean gradient; ``batch=1`` is
    the exact per-sample estimate.

    * ``sampled`` (the true Fisher, the default when the backbone keeps its source classifier):
      labels are drawn from the pretrained model's own softmax over the source classes, so no
      labels are needed and the importance is that for the *source* task.
    * ``empirical``: squared gradients of ``loss_fn(model(x), y)`` with the loader's labels; the
      fallback when there is no source classifier (best measured after a head-only stage, when
      the head is no longer random).

    ``normalize`` rescales the Fisher so ``lam`` means the same across architectures, dataset
    sizes and numbers of source classes (raw Fisher values span many orders of magnitude):

    * ``mean`` (default): divide by the mean entry, so ``lam`` is on L2-SP's ``alpha`` scale (a
      uniform Fisher makes EWC equal to L2-SP) and the pull is concentrated on the weights that
      matter. The Fisher is very peaked (on resnet10t the largest entry is about 2,700 times
      the mean), which graft's AdamW takes in its stride; with plain SGD at a large rate
      (lr 0.05, ``lam = 1``) it diverged: use ``max`` there.
    * ``max``: divide by the largest entry, so ``0 <= F <= 1`` and no weight is pulled harder
      than by L2-SP with ``alpha = lam``; most entries are then far below 1, and ``lam`` must
      be about 1,000 times larger for the same effect (``lam = 10,000`` changed retention on
      ``bench/forgetting.py`` by less than 1%).
    * ``none``: the raw Fisher.

    Args:
        lam: strength λ (with ``normalize="mean"``: on L2-SP's ``alpha`` scale). 10 (the
            default) cut the KL to the original model by 40% on ``bench/forgetting.py`` at the
            same accuracy; 100 by 86%, at one test image in 23.
        samples: at most this many reference inputs for the Fisher.
        batch: inputs per backward pass of the Fisher estimate (1 = exact per-sample).
        fisher: ``auto``, ``sampled`` or ``empirical``.
        normalize: ``max``, ``mean`` or ``none``.
        seed: seed for the sampled labels.
    """

    name: ClassVar[str] = "ewc"  # type: ignore[misc]

    lam: float = 10.0
    samples: int = 256
    batch: int = 16
    fisher: str = "auto"
    normalize: str = "mean"
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fisher not in FISHER_MODES:
            raise ConfigError(
                f"ewc fisher={self.fisher!r}: choose one of {', '.join(FISHER_MODES)}"
            )
        if self.normalize not in NORMALIZE:
            raise ConfigError(
                f"ewc normalize={self.normalize!r}: choose one of {', '.join(NORMALIZE)}"
            )
        if self.samples < 1 or self.batch < 1:
            raise ConfigError(
                f"ewc samples={self.samples} and batch={self.batch} must be at least 1"
            )

    def anchor(
        self,
        model: nn.Module,
        *,
        backbone: Backbone | None = None,
        reference_loader: Iterable[Any] | None = None,
        device: torch.device | str | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self._backbone = backbone_of(model, backbone)
        if reference_loader is None:
            raise ConfigError(
                "ewc needs reference inputs to measure the Fisher: pass reference_loader "
                "(source-like images, or the target training images)"
            )
        mode = self.fisher
        if mode == "auto":
            mode = "sampled" if self._backbone.source_head is not None else "empirical"
        if mode == "sampled" and self._backbone.source_head is None:
            raise ConfigError(
                f"ewc fisher='sampled' needs the source classifier, which backbone "
                f"{self._backbone.spec.name!r} does not keep; use fisher='empirical'"
            )
        if mode == "empirical" and loss_fn is None:
            raise ConfigError("ewc fisher='empirical' needs loss_fn(outputs, targets) in anchor")
        dev = device if device is not None else device_of(self._backbone)
        self._anchor = snapshot(self._backbone, dev)
        raw = fisher_diagonal(
            model,
            self._backbone,
            reference_loader,
            mode=mode,
            loss_fn=loss_fn,
            samples=self.samples,
            batch=self.batch,
            seed=self.seed,
        )
        flat = torch.cat([f.flatten() for f in raw.values()])
        self.fisher_mean, self.fisher_max = float(flat.mean()), float(flat.max())
        scale = {"max": self.fisher_max, "mean": self.fisher_mean}.get(self.normalize, 1.0)
        scale = scale if scale > 0 else 1.0  # an all-zero Fisher stays zero
        self.importance = {n: (f / scale).to(dev or f.device) for n, f in raw.items()}
        self.fisher_mode = mode
        self._ready = True

    def penalty(
        self,
        model: nn.Module,
        inputs: torch.Tensor | None = None,
        outputs: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        self._check_ready()
        weighted = drift(self._backbone, self._anchor, self.importance)
        return 0.5 * self.lam * weighted, {"ewc_weighted_drift": float(weighted.detach())}


def fisher_diagonal(
    model: nn.Module,
    backbone: Backbone,
    batches: Iterable[Any],
    *,
    mode: str = "sampled",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    samples: int = 256,
    batch: int = 1,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher: squared gradients of the negative log-likelihood, per backbone parameter.

    ``F = Σ_g (∇ Σ_{i∈g} nll_i)² / n`` over groups ``g`` of ``batch`` inputs: with ``batch=1``
    the mean per-sample squared gradient; with larger groups, one backward pass per group, an
    unbiased estimate of the same for ``sampled`` labels (each sample's score has mean zero
    under the model's own distribution, so cross terms vanish in expectation).

    Args:
        model: the full model (used by ``empirical``: ``loss_fn(model(x), y)``).
        backbone: its backbone; ``sampled`` uses ``backbone.source_logits``.
        batches: tensors or ``(inputs, targets, ...)`` tuples.
        mode: ``sampled`` (labels drawn from the source softmax) or ``empirical``.
        loss_fn: the loss for ``empirical``.
        samples: stop after this many inputs.
        batch: inputs per backward pass.
        seed: seed for the sampled labels.

    Returns:
        ``{name: tensor}`` with the shape of each backbone parameter (non-negative).
    """
    named = list(backbone_params(backbone))
    params = [p for _, p in named]
    fisher = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    gen = torch.Generator().manual_seed(seed)
    n = 0
    device = params[0].device if params else torch.device("cpu")
    module, task_loss = _nll_parts(model, backbone, mode, loss_fn)
    with _measuring([model, backbone], params):
        chunks = _chunks(batches, samples, need_targets=mode == "empirical", size=batch)
        n_in = len(getattr(batches, "dataset", ())) or samples  # a DataLoader knows its size
        for x, y in beating(chunks, "ewc fisher", -(-min(samples, n_in) // batch), bar=True):
            out = module(x.to(device))
            if mode == "sampled":  # labels from the model's own softmax: one forward serves both
                probs = out.detach().float().softmax(-1).cpu()
                y = torch.multinomial(probs, 1, generator=gen).squeeze(1)
            assert y is not None
            nll = task_loss(out, y.to(device)) * len(x)  # the group's sum (losses are means)
            grads = torch.autograd.grad(nll, params, allow_unused=True)
            for f, g in zip(fisher, grads, strict=True):
                if g is not None:
                    f += g.detach().float().pow(2)
            n += len(x)
    if n == 0:
        raise ConfigError("ewc: the reference loader yielded no inputs")
    return {name: f / n for (name, _), f in zip(named, fisher, strict=True)}


class _SourceLogits(nn.Module):
    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.source_logits(x).float()


def _nll_parts(
    model: nn.Module, backbone: Backbone, mode: str, loss_fn: Callable[..., torch.Tensor] | None
) -> tuple[nn.Module, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The module whose outputs enter the negative log-likelihood, and that loss."""
    if mode == "sampled":
        return _SourceLogits(backbone), F.cross_entropy
    assert loss_fn is not None
    return model, loss_fn


def _chunks(
    batches: Iterable[Any], limit: int, *, need_targets: bool, size: int = 16
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(x, y)`` chunks of at most ``size`` samples, ``limit`` samples in all."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor | None] = []
    for x, y in _single_samples(batches, limit, need_targets=need_targets):
        xs.append(x)
        ys.append(y)
        if len(xs) == size:
            yield _stack(xs, ys)
            xs, ys = [], []
    if xs:
        yield _stack(xs, ys)


def _stack(
    xs: list[torch.Tensor], ys: list[torch.Tensor | None]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    targets = [y for y in ys if y is not None]
    return torch.cat(xs), (torch.cat(targets) if len(targets) == len(ys) else None)


def _single_samples(
    batches: Iterable[Any], limit: int, *, need_targets: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(x[i:i+1], y[i:i+1])`` one sample at a time, up to ``limit`` samples."""
    count = 0
    for batch in batches:
        x = first_item(batch)
        y = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        if need_targets and y is None:
            raise ConfigError("ewc fisher='empirical' needs (inputs, targets) batches")
        for i in range(len(x)):
            if count >= limit:
                return
            yield x[i : i + 1], (y[i : i + 1] if y is not None else None)
            count += 1


class _measuring:
    """Eval mode and gradients on for the duration; every flag restored afterwards."""

    def __init__(self, roots: list[nn.Module], params: list[nn.Parameter]) -> None:
        self.roots, self.params = roots, params

    def __enter__(self) -> None:
        self.modes = [(m, m.training) for r in self.roots for m in r.modules()]
        self.grads = [p.requires_grad for p in self.params]
        for r in self.roots:
            r.eval()
        for p in self.params:
            p.requires_grad_(True)

    def __exit__(self, *exc: object) -> None:
        for m, mode in self.modes:
            m.training = mode
        for p, flag in zip(self.params, self.grads, strict=True):
            p.requires_grad_(flag)
