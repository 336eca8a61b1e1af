"""Layer-group importance: how strongly the loss pulls on each layer group, before you unfreeze.

The score of a group is the mean absolute gradient of the training loss with respect to its
parameters, averaged over a few batches. Groups with large gradients are the ones the new task
most wants to change: the natural first candidates to unfreeze. The idea follows gradient-based
layer selection for fine-tuning (Lee et al., "Surgical Fine-Tuning Improves Adaptation to
Distribution Shifts", ICLR 2023, who rank blocks by relative gradient norm).

Example::

    batches = importance_batches(model, dataset.train, n_batches=4)
    scores = layer_importance(model, batches)      # {"stem": 3.1e-04, ..., "head": 2.2e-02}
    plot_layer_importance(scores)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch

from graft.errors import DataError

if TYPE_CHECKING:
    from graft.data.base import Samples
    from graft.model import GraftModel

Batch = tuple[torch.Tensor, torch.Tensor]


def layer_importance(model: GraftModel, batches: Iterable[Batch]) -> dict[str, float]:
    """Mean absolute gradient of the loss per layer group (input side first, the head last).

    Runs the model in inference mode (BatchNorm statistics and dropout fixed) so the scores
    describe the trained network and do not change it: weights, gradients, ``requires_grad``
    flags and the train/eval mode are all restored afterwards.

    Args:
        model: a model whose task computes the loss (targets in the task's encoding).
        batches: ``(inputs, encoded targets)`` pairs, e.g. from :func:`importance_batches`.

    Returns:
        ``{group name: mean |gradient|}`` over every parameter of the group and every batch.

    Shape:
        inputs: ``(batch, channels, height, width)``; targets as the task's loss expects.
    """
    from graft.training.params import group_param_lists

    groups = group_param_lists(model)
    flags = [p.requires_grad for p in model.parameters()]
    grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    was_training = model.training
    sums = np.zeros(len(groups))
    n = 0
    try:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(True)
        device = next(model.parameters()).device
        for x, y in batches:
            model.zero_grad(set_to_none=True)
            loss = model.task.loss(model(x.to(device)), y.to(device))
            loss.backward()
            sums += [_mean_abs_grad(params) for _, params in groups]
            n += 1
    finally:
        for p, flag, grad in zip(model.parameters(), flags, grads, strict=True):
            p.grad = grad
            p.requires_grad_(flag)
        model.train(was_training)
    if n == 0:
        raise DataError("layer_importance: no batches given; pass at least one (inputs, targets)")
    return {name: float(s / n) for (name, _), s in zip(groups, sums, strict=True)}


def _mean_abs_grad(params: list[torch.nn.Parameter]) -> float:
    total = sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)
    count = sum(p.numel() for p in params)
    return total / count if count else 0.0


def importance_batches(
    model: GraftModel,
    samples: Samples,
    *,
    n_batches: int = 4,
    batch_size: int = 32,
    seed: int = 0,
) -> list[Batch]:
    """A few batches of ``samples`` preprocessed for ``model`` (no augmentation), seeded.

    Args:
        samples: files and targets in original units (encoded here for the task's loss).
        n_batches: how many batches at most.
        batch_size: samples per batch.
        seed: picks which samples.
    """
    from graft.data import build_transform, load_image

    if len(samples) == 0:
        raise DataError("importance_batches: the split is empty; nothing to measure on")
    order = np.random.default_rng(seed).permutation(len(samples))[: n_batches * batch_size]
    transform = build_transform(model.data_config, train=False)
    channels = model.data_config.channels
    out: list[Batch] = []
    for start in range(0, len(order), batch_size):
        part = samples.subset(order[start : start + batch_size])
        if part.texts is not None:  # a text model: its packed tokens
            x = model.dataset_for(part).tensors[0]
        else:
            x = torch.stack([transform(load_image(p, channels)) for p in part.paths])
        out.append((x, model.task.encode(part.targets)))
    return out
