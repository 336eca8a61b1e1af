"""Rotation prediction: self-supervised pre-training of the backbone on unlabeled target images.

Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018. Run before the supervised stages, it moves the backbone toward the
target domain without a single label.

:class:`RotationPretext` is the loop's extension (named ``adapt``): it prepends a ``pretext``
stage to the plan (:meth:`RotationPretext.pretext_stage`), provides that stage's batches and
loss, and records its epochs in ``model.info["adaptation"]["rotation"]``; Accelerate chooses
the device and precision, and checkpoints carry its head and history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from graft.adapt.registry import ADAPTERS
from graft.backbones.base import Backbone
from graft.errors import ConfigError
from graft.protect.params import backbone_params, device_of, first_item
from graft.strategies.base import Stage
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.adapt.record import AdaptationRecord
    from graft.data.base import Dataset
    from graft.model import GraftModel
    from graft.strategies.base import Plan


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
class RotationPretext(ExtensionBase):
    """A 4-way rotation classifier on pooled backbone features, its loss, and its pretext stage.

    Not an alignment loss: in ``graft.fit`` it runs as a ``pretext`` stage before the
    supervised ones; outside, call :meth:`pretrain` (or :func:`pretrain_rotation`).

    Args:
        feature_dim: width of the backbone features.
        epochs: epochs of the pretext stage.
        lr: its learning rate (small: the backbone is pretrained).
        weight_decay: its AdamW weight decay (backbone and head).

    Shape:
        - features: ``(4B, feature_dim)``; labels: ``(4B,)``; Output: a scalar loss.
    """

    stage = "pretrain"
    name = "adapt"

    def __init__(
        self, feature_dim: int, epochs: int = 1, lr: float = 1e-4, weight_decay: float = 0.0
    ) -> None:
        if epochs < 1 or lr < 0 or weight_decay < 0:
            raise ConfigError(
                f"rotation epochs={epochs} must be at least 1 and lr={lr}, "
                f"weight_decay={weight_decay} non-negative"
            )
        self.feature_dim, self.epochs, self.lr = feature_dim, epochs, lr
        self.weight_decay = weight_decay
        self.classifier = nn.Linear(feature_dim, 4)
        self._runner: Any = self.classifier
        self.paths: list[Path] = []
        self.batch, self.augment, self.num_workers = 8, True, 0
        self.record: AdaptationRecord | None = None
        self.history: list[dict[str, float]] = []
        self._model: Any = None
        self._labels = torch.zeros(0, dtype=torch.long)
        self._steps = 0

    def __call__(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The rotation loss and accuracy of ``features`` against their rotation ``labels``."""
        logits = self._runner(features)
        loss = F.cross_entropy(logits.float(), labels)
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, {"rotation_loss": float(loss.detach()), "rotation_acc": float(acc)}

    def align(
        self, source_feats: torch.Tensor, target_feats: torch.Tensor, progress: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Refused: rotation is not an alignment loss."""
        raise ConfigError(
            "rotation is a pretrain step, not an alignment loss: a pre-training step run before "
            "training (pretrain_rotation(backbone, unlabeled_loader), or adapt='rotation')"
        )

    def options(self) -> dict[str, Any]:
        """The constructor options as a JSON-ready dict (saved with the model artifact)."""
        return {
            "feature_dim": self.feature_dim, "epochs": self.epochs, "lr": self.lr,
            "weight_decay": self.weight_decay,
        }  # fmt: skip

    def pretrain(
        self, backbone: Backbone, unlabeled_loader: Iterable[Any], **kwargs: Any
    ) -> dict[str, Any]:
        """:func:`pretrain_rotation` with this head."""
        return pretrain_rotation(backbone, unlabeled_loader, head=self, **kwargs)

    def attach(
        self,
        paths: list[Path],
        *,
        batch_size: int = 32,
        augment: bool = True,
        num_workers: int = 0,
        record: AdaptationRecord | None = None,
    ) -> RotationPretext:
        """The unlabeled target images and the record to keep; returns ``self``.

        ``batch_size`` is the loop's: a quarter of it per step (every image counts four).
        """
        self.paths, self.batch = list(paths), max(2, batch_size // 4)
        self.augment, self.num_workers, self.record = augment, num_workers, record
        return self

    def pretext_stage(self, plan: Plan) -> Plan:
        """``plan`` with the rotation pre-training prepended as a ``pretext`` stage."""
        rotation = Stage(
            name="rotation", kind="pretext", epochs=self.epochs, lr=self.lr,
            multipliers=(*(1.0 for _ in plan.groups[:-1]), 0.0), bn="train", patience=None,
        )  # fmt: skip
        return replace(plan, stages=(rotation, *plan.stages))

    # ------------------------------------------------------------ the loop's hooks
    def setup(self, model: Any, stage: Any, accelerator: Any) -> bool:
        """Active only in the pretext stage: the head moves to Accelerate's device."""
        if stage.kind != "pretext":
            return False
        self._model = model
        self.classifier.to(accelerator.device)
        if accelerator.num_processes > 1:  # the head's gradients are averaged like the model's
            self._runner = accelerator.prepare_model(self.classifier)
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
        head = {"params": list(self.classifier.parameters()), "lr": stage.lr, "name": "rotation"}
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
        self.classifier.train()
        loss, metrics = self(features, self._labels)
        return loss, {"acc": metrics["rotation_acc"]}

    def on_epoch(self, row: dict[str, Any]) -> None:
        """Keep and log the pretext epochs; supervised epochs get the target report."""
        if row.get("kind") != "pretext":
            if self.record is not None:
                self.record.on_epoch(row)
            return
        if "train_adapt_acc" not in row:
            return
        entry = {
            "epoch": float(row["epoch"]),
            "rotation_loss": float(row["train_loss"]),
            "rotation_acc": float(row["train_adapt_acc"]),
            "steps": float(self._steps),
        }
        self.history.append(entry)
        if self.record is not None:
            self.record.log(
                f"  rotation epoch {row['epoch']}: loss {entry['rotation_loss']:.4f}  "
                f"accuracy {entry['rotation_acc']:.4f}"
            )

    def state_dict(self) -> dict[str, Any]:
        """The rotation head and the epochs so far, for checkpoints."""
        head = {k: v.detach().clone() for k, v in self.classifier.state_dict().items()}
        return {"head": head, "history": [dict(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (``--resume``)."""
        self.classifier.load_state_dict(state["head"])
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

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """``model.info["adaptation"]`` with the pretext epochs under ``rotation``."""
        del dataset, cfg
        if self.record is None:
            return {"rotation": self.result()}
        return self.record.finish(model, rotation=self.result())


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
    dev = torch.device(device) if device is not None else device_of(backbone)
    head = head or RotationPretext(backbone.num_features)
    head.classifier.to(dev)
    params = [p for _, p in backbone_params(backbone)]
    flags = [p.requires_grad for p in params]
    modes = [(m, m.training) for m in backbone.modules()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        [*params, *head.classifier.parameters()], lr=lr, weight_decay=weight_decay
    )
    history: list[dict[str, float]] = []
    try:
        backbone.train()
        head.classifier.train()
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
    device: torch.device | None,
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
