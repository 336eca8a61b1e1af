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
from graft.training.extensions import ExtensionBase


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


class RotationTerm(ExtensionBase):
    """Rotation pre-training as a ``pretext`` stage of the one training loop.

    The stage (prepended to the plan by :func:`graft.workflows.extensions.setup_extensions`)
    trains the whole backbone and :attr:`head` on the unlabeled target images, each seen at four
    rotations; Accelerate chooses the device and precision, and checkpoints carry the head.

    Args:
        head: the rotation classifier.
        paths: unlabeled target image files.
        batch_size: the loop's batch size (a quarter of it per step: every image counts four).
        augment: the training augmentation on target images.
        num_workers: DataLoader workers.
        weight_decay: AdamW weight decay of the stage (backbone and head).
        log: where to write each epoch's rotation loss and accuracy.
    """

    name = "adapt"

    def __init__(
        self,
        head: RotationPretext,
        paths: list[Any],
        *,
        batch_size: int = 32,
        augment: bool = True,
        num_workers: int = 0,
        weight_decay: float = 0.0,
        log: Any = print,
    ) -> None:
        self.head, self.paths = head, list(paths)
        self.batch = max(2, batch_size // 4)
        self.augment, self.num_workers, self.weight_decay = augment, num_workers, weight_decay
        self.log = log
        self._model: Any = None
        self.history: list[dict[str, float]] = []
        self._runner: Any = head
        self._labels = torch.zeros(0, dtype=torch.long)
        self._steps = 0

    def setup(self, model: Any, stage: Any, accelerator: Any) -> bool:
        """Active only in the pretext stage: the head moves to Accelerate's device."""
        if stage.kind != "pretext":
            return False
        self._model = model
        self.head.to(accelerator.device)
        if accelerator.num_processes > 1:  # the head's gradients are averaged like the model's
            self._runner = accelerator.prepare_model(self.head)
        return True

    def pretext_loader(self, model: Any, generator: torch.Generator) -> Any:
        """Batches of target images (their placeholder labels are never read)."""
        from graft.data import ImageDataset, build_transform
        from graft.data.unlabeled import unlabeled_samples

        transform = build_transform(model.data_config, train=self.augment)
        dataset = ImageDataset(unlabeled_samples(self.paths), transform)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.batch,
            shuffle=True,
            generator=generator,
            num_workers=self.num_workers,
            drop_last=len(dataset) > self.batch,
        )
        self._steps = len(loader)
        return loader

    def parameter_groups(self, stage: Any) -> list[dict[str, Any]]:
        """In the pretext stage: every backbone group and the head, at the stage's rate."""
        if stage.kind != "pretext" or self._model is None:
            return []
        from graft.training.params import param_groups

        groups = param_groups(self._model, stage, weight_decay=self.weight_decay)
        head = {"params": list(self.head.parameters()), "lr": stage.lr, "name": "rotation"}
        return [*groups, {**head, "weight_decay": self.weight_decay}]

    def pretext_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The batch at four rotations (the loop runs the model on it); keeps the labels."""
        rotated, self._labels = rotate_batch(x)
        return rotated

    def loss(
        self,
        model: Any,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The 4-way rotation loss on the rotated batch's features, and the accuracy."""
        del model, x, outputs, progress
        self.head.train()
        loss, metrics = self._runner(features, self._labels)
        return loss, {"acc": metrics["rotation_acc"]}

    def on_epoch(self, row: dict[str, Any]) -> None:
        """Keep and log the pretext stage's epochs (the supervised stages are not its own)."""
        if row.get("kind") != "pretext" or "train_adapt_acc" not in row:
            return
        entry = {
            "epoch": float(row["epoch"]),
            "rotation_loss": float(row["train_loss"]),
            "rotation_acc": float(row["train_adapt_acc"]),
            "steps": float(self._steps),
        }
        self.history.append(entry)
        self.log(
            f"  rotation epoch {row['epoch']}: loss {entry['rotation_loss']:.4f}  "
            f"accuracy {entry['rotation_acc']:.4f}"
        )

    def state_dict(self) -> dict[str, Any]:
        """The rotation head and the epochs so far, for checkpoints."""
        head = {k: v.detach().clone() for k, v in self.head.state_dict().items()}
        return {"head": head, "history": [dict(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.head.load_state_dict(state["head"])
        self.history = [dict(h) for h in state.get("history", [])]

    def result(self) -> dict[str, Any]:
        """What pre-training did, in :func:`pretrain_rotation`'s format."""
        if not self.history:
            return {"history": []}
        last = self.history[-1]
        return {
            "history": self.history,
            "rotation_loss": last["rotation_loss"],
            "rotation_acc": last["rotation_acc"],
        }
