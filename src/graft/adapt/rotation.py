"""Rotation prediction: self-supervised pre-training of the backbone on unlabeled target images.

Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018. Run before the supervised stages, it moves the backbone toward the
target domain without a single label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graft.adapt.base import ADAPTERS, Adapter
from graft.backbones.base import Backbone
from graft.errors import ConfigError
from graft.protect.base import backbone_params, first_item, resolve_device


def rotate_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image at 0°, 90°, 180° and 270° counter-clockwise, with the rotation as its label.

    Rows ``k * B .. (k + 1) * B − 1`` hold the batch rotated by ``k × 90°``, label ``k``.

    Shape:
        - Input: ``(B, C, H, W)`` with ``H == W``.
        - Output: ``(4B, C, H, W)`` and labels ``(4B,)`` (int64).
    """
    if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
        raise ConfigError(
            f"rotation needs square images (B, C, H, H), got shape {tuple(x.shape)}; "
            "resize or center-crop to a square first"
        )
    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return rotated, labels


@ADAPTERS.register("rotation")
class RotationPretext(Adapter):
    """A 4-way rotation classifier on pooled backbone features, and its loss.

    A pre-training step, not an alignment loss: call :meth:`pretrain` (or
    :func:`pretrain_rotation`) before the supervised stages.

    Args:
        feature_dim: width of the backbone features.

    Shape:
        - features: ``(4B, feature_dim)``; labels: ``(4B,)``; Output: a scalar loss.
    """

    stage = "pretrain"

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.classifier = nn.Linear(feature_dim, 4)

    def forward(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.classifier(features)
        loss = F.cross_entropy(logits.float(), labels)
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, {"rotation_loss": float(loss.detach()), "rotation_acc": float(acc)}

    def loss(
        self, source_feats: torch.Tensor, target_feats: torch.Tensor, progress: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise ConfigError(
            "rotation is a pre-training step, not an alignment loss: "
            "run pretrain_rotation(backbone, unlabeled_loader) before training"
        )

    def pretrain(
        self, backbone: Backbone, unlabeled_loader: Iterable[Any], **kwargs: Any
    ) -> dict[str, Any]:
        """:func:`pretrain_rotation` with this head."""
        return pretrain_rotation(backbone, unlabeled_loader, head=self, **kwargs)


def pretrain_rotation(
    backbone: Backbone,
    unlabeled_loader: Iterable[Any],
    *,
    epochs: int = 1,
    lr: float = 1e-4,
    weight_decay: float = 0.0,
    device: torch.device | str | None = None,
    progress: bool = False,
    head: RotationPretext | None = None,
) -> dict[str, Any]:
    """Train the whole backbone (not its source classifier) to predict image rotations.

    Every batch is expanded four times (:func:`rotate_batch`), so choose a loader batch size a
    quarter of the usual one. BatchNorm runs in training mode. Modes and ``requires_grad``
    flags are restored afterwards; the weights stay changed.

    Args:
        backbone: updated in place.
        unlabeled_loader: batches of images (tensors, or tuples whose first item is the images;
            any labels are ignored), normalised like the training images.
        epochs: passes over the loader.
        lr: AdamW learning rate for backbone and rotation head (small: the backbone is
            pretrained).
        weight_decay: AdamW weight decay.
        device: where to train; defaults to the backbone's device.
        progress: show a progress bar.
        head: a rotation head to train (a new one by default).

    Returns:
        ``{"history": [{"epoch", "rotation_loss", "rotation_acc", "steps"}, ...],
        "rotation_loss": last epoch's, "rotation_acc": last epoch's}``.
    """
    if epochs < 1:
        raise ConfigError(f"pretrain_rotation epochs={epochs} must be at least 1")
    dev = resolve_device(backbone, device)
    head = (head or RotationPretext(backbone.num_features)).to(dev)
    params = [p for _, p in backbone_params(backbone)]
    flags = [p.requires_grad for p in params]
    modes = [(m, m.training) for m in backbone.modules()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW([*params, *head.parameters()], lr=lr, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    try:
        backbone.train()
        head.train()
        for epoch in range(1, epochs + 1):
            history.append(
                _rotation_epoch(backbone, head, unlabeled_loader, optimizer, dev, epoch, progress)
            )
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
    last = history[-1]
    return {
        "history": history,
        "rotation_loss": last["rotation_loss"],
        "rotation_acc": last["rotation_acc"],
    }


def _rotation_epoch(
    backbone: Backbone,
    head: RotationPretext,
    loader: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    progress: bool,
) -> dict[str, float]:
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc=f"rotation epoch {epoch}")
    loss_sum, acc_sum, seen, steps = 0.0, 0.0, 0, 0
    for batch in loader:
        x, labels = rotate_batch(first_item(batch).to(device))
        loss, metrics = head(backbone(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += metrics["rotation_loss"] * len(x)
        acc_sum += metrics["rotation_acc"] * len(x)
        seen += len(x)
        steps += 1
    if seen == 0:
        raise ConfigError("pretrain_rotation: the unlabeled loader yielded no images")
    return {
        "epoch": float(epoch),
        "rotation_loss": loss_sum / seen,
        "rotation_acc": acc_sum / seen,
        "steps": float(steps),
    }
