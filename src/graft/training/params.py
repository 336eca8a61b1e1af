"""Freezing, BatchNorm policy and optimizer parameter groups: pure helpers over a model.

The training loop applies a :class:`~graft.strategies.base.Stage` with three calls:
:func:`apply_trainable` once (``requires_grad`` per layer group), :func:`freeze_batchnorm`
after every ``model.train()`` (frozen BatchNorm stays in inference mode, so its running
statistics do not move), and :func:`param_groups` to build a fresh optimizer.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from graft.model import GraftModel
    from graft.strategies.base import Plan, Stage

_BN_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def is_norm(module: nn.Module) -> bool:
    """True for BatchNorm-like layers (timm's BatchNormAct2d subclasses BatchNorm2d)."""
    return isinstance(module, _BN_TYPES)


def group_param_lists(model: GraftModel) -> list[tuple[str, list[nn.Parameter]]]:
    """Parameters per layer group, input side first, the head last."""
    out = [(g.name, params) for g, params in model.backbone.group_parameters()]
    out.append(("head", list(model.head.parameters())))
    return out


def apply_trainable(model: GraftModel, stage: Stage) -> int:
    """Set ``requires_grad`` from the stage's multipliers; return the trainable parameter count.

    Parameters outside every group (the backbone's original classifier) are always frozen.
    Name patterns and layer types in the stage refine the group choice.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    for (_, params), mult in zip(group_param_lists(model), stage.multipliers, strict=True):
        for p in params:
            p.requires_grad_(mult > 0)
    _apply_patterns(model, stage)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def trainable_counts(model: GraftModel, plan: Plan) -> list[int]:
    """Trainable parameters per stage of ``plan``; every ``requires_grad`` is left as it was."""
    before = [(p, p.requires_grad) for p in model.parameters()]
    try:
        return [apply_trainable(model, stage) for stage in plan.stages]
    finally:
        for p, flag in before:
            p.requires_grad_(flag)


def _apply_patterns(model: GraftModel, stage: Stage) -> None:
    if stage.freeze_patterns:
        for name, p in model.backbone.model.named_parameters():
            if any(fnmatch.fnmatch(name, pat) for pat in stage.freeze_patterns):
                p.requires_grad_(False)
    if stage.bn == "train_bn_only":
        # Train only the affine parameters of normalisation layers in the backbone (and the head).
        for module in model.backbone.modules():
            for p in module.parameters(recurse=False):
                p.requires_grad_(is_norm(module))


def norm_modules(model: GraftModel) -> list[nn.Module]:
    """Every BatchNorm layer of the backbone."""
    return [m for m in model.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def frozen_norm_modules(model: GraftModel) -> list[nn.Module]:
    """Norm layers whose parameters are all frozen: they must stay in inference mode."""
    return [
        m
        for m in norm_modules(model)
        if not any(p.requires_grad for p in m.parameters(recurse=False))
    ]


def bn_policy(model: GraftModel, stage: Stage) -> str:
    """The stage's BatchNorm policy with ``auto`` resolved for this model.

    ``auto`` is ``eval`` for a pretrained backbone: its head is fitted on features computed
    with the pretrained statistics (the linear start and the head stage read the feature
    store, built in inference mode), and batch statistics of a new domain shift every
    feature under that head. Measured on 40 digits per class at 64 px with EfficientNet-Lite0,
    two-stage with every group trainable: at a backbone rate of 3e-7, where the weights hardly
    move, the first fine-tuning epoch's validation loss was 11.2 with statistics moving
    against 0.45 with them fixed (0.46 before the stage). A randomly initialised backbone has
    no statistics worth keeping: ``auto`` is ``frozen`` there (trainable layers normalise with
    their batch's statistics, as training from scratch needs).
    """
    if stage.bn != "auto":
        return stage.bn
    return "eval" if model.backbone.spec.pretrained else "frozen"


def freeze_batchnorm(model: GraftModel, stage: Stage) -> int:
    """Put BatchNorm layers in eval mode as the stage's policy says (call after every
    ``model.train()``).

    With ``bn="auto"`` (the default) see :func:`bn_policy`. With ``bn="frozen"`` a BatchNorm
    whose parameters are frozen keeps its running statistics; with ``bn="eval"`` every
    BatchNorm does, trainable or not (Keras' advice for fine-tuning: a few small batches of a
    new domain would otherwise overwrite the pretrained statistics); with ``bn="train"`` they
    update even when frozen (a rarely wanted choice, offered for domain shifts where
    re-estimating statistics helps). Returns the number of layers put in eval mode.
    """
    policy = bn_policy(model, stage)
    if policy == "train":
        return 0
    if policy == "train_bn_only":
        return 0  # BN layers are the trainable part: they train normally
    modules = norm_modules(model) if policy == "eval" else frozen_norm_modules(model)
    for m in modules:
        m.eval()
    return len(modules)


def param_groups(
    model: GraftModel, stage: Stage, *, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one per layer group with ``lr = stage.lr * multiplier``.

    Biases and normalisation weights get no weight decay (the usual timm convention).
    """
    groups: list[dict[str, Any]] = []
    for (name, params), mult in zip(group_param_lists(model), stage.multipliers, strict=True):
        trainable = [p for p in params if p.requires_grad]
        if not trainable:
            continue
        decay = [p for p in trainable if p.ndim > 1]
        no_decay = [p for p in trainable if p.ndim <= 1]
        lr = stage.lr * (mult if mult > 0 else 1.0)
        for plist, wd, suffix in ((decay, weight_decay, ""), (no_decay, 0.0, ".no_decay")):
            if plist:
                groups.append(
                    {"params": plist, "lr": lr, "weight_decay": wd, "name": name + suffix}
                )
    return groups


def count_parameters(params: Sequence[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)
