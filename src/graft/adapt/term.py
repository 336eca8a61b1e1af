"""An alignment adapter as a loss term of the training loop, fed with unlabeled target batches.

Every step of a stage that runs the backbone, :class:`AlignmentTerm` draws a batch of target
images, runs the backbone on it, and returns the adapter's loss on (source features, target
features) with its metrics, which the loop logs per epoch as ``train_adapt_<metric>``
(``train_adapt_domain_acc`` for DANN). Target batches are drawn in an order seeded from
(seed, stage, epoch) and cycled when the target set is smaller than the source set, so a run,
and a run resumed from a checkpoint, are reproducible. Target labels are never read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graft.adapt.base import Adapter
from graft.errors import ConfigError
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.model import GraftModel
    from graft.strategies.base import Stage


class AlignmentTerm(ExtensionBase):
    """A :class:`~graft.training.loop.LossTerm` around an ``align`` adapter (DANN, CORAL, MMD).

    The adapter's own parameters (DANN's discriminator) are offered to the stage's optimizer
    through :meth:`parameter_groups`, at the head's learning rate. In a distributed run the
    adapter is wrapped for gradient synchronisation and each process takes its share of every
    target batch, like the source batches.

    Args:
        adapter: the alignment adapter; its ``loss`` gets the stage's progress (0 -> 1), which
            warms up DANN's gradient reversal.
        target: unlabeled target image files.
        batch_size: target images per step (all processes together), usually the source's.
        seed: seeds the target order, with the stage and the epoch.
        augment: the training augmentation on target images (as on source images).
        num_workers: DataLoader workers for decoding target images.
    """

    name = "adapt"

    def __init__(
        self,
        adapter: Adapter,
        target: Sequence[Path],
        *,
        batch_size: int = 32,
        seed: int = 0,
        augment: bool = True,
        num_workers: int = 0,
    ) -> None:
        if adapter.stage != "align":
            raise ConfigError(
                f"{type(adapter).__name__} is a {adapter.stage} step, not an alignment loss"
            )
        if len(target) < 2:
            raise ConfigError(f"domain alignment needs at least 2 target images, got {len(target)}")
        self.adapter, self.paths = adapter, list(target)
        self.batch_size, self.seed = batch_size, seed
        self.augment, self.num_workers = augment, num_workers
        self._runner: Any = adapter
        self._stage: Stage | None = None
        self._batches: Iterator[torch.Tensor] = iter(())
        self._epoch, self._cycle = -1, 0
        self._rank, self._world = 0, 1

    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> bool:
        """Move the adapter to the device and build the target images' dataset for this stage."""
        if stage.kind == "pretext":
            return False
        from graft.data import ImageDataset, build_transform
        from graft.data.unlabeled import unlabeled_samples

        self._stage = stage
        self.adapter.to(accelerator.device)
        self._rank, self._world = accelerator.process_index, accelerator.num_processes
        if self._world > 1 and any(True for _ in self.adapter.parameters()):
            self._runner = accelerator.prepare_model(self.adapter)
        transform = build_transform(model.data_config, train=self.augment)
        self._dataset = ImageDataset(unlabeled_samples(self.paths), transform)
        self._epoch, self._cycle = -1, 0
        return True

    def state_dict(self) -> dict[str, Any]:
        """The adapter's weights (a DANN discriminator), saved with every checkpoint."""
        return {k: v.detach().clone() for k, v in self.adapter.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the adapter's weights from a checkpoint (``--resume``)."""
        self.adapter.load_state_dict(state)

    def parameter_groups(self, stage: Stage) -> list[dict[str, Any]]:
        """The adapter's parameters as one optimizer group at the head's rate (none for CORAL)."""
        params = [p for p in self.adapter.parameters() if p.requires_grad]
        if not params:
            return []
        lr = stage.lr * (stage.multipliers[-1] or 1.0)
        return [{"params": params, "lr": lr, "name": self.name}]

    def loss(
        self,
        model: GraftModel,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The adapter's loss on this batch's features and a target batch's, with its metrics."""
        target = self._next_batch(progress).to(features.device, non_blocking=True)
        target_features = model.backbone(target)
        self.adapter.train()
        loss, metrics = self._runner(features, target_features, progress)
        return loss, metrics

    def _next_batch(self, progress: float) -> torch.Tensor:
        if self._stage is None:
            raise RuntimeError("AlignmentTerm.setup(model, stage, accelerator) must run first")
        # progress = ((epoch - 1) * steps + step) / (epochs * steps): recover the epoch.
        epoch = int(progress * self._stage.epochs + 1e-9)
        if epoch != self._epoch:
            self._epoch, self._cycle = epoch, 0
            self._batches = self._pass()
        batch = next(self._batches, None)
        if batch is None:  # the target set is used up within this epoch: cycle
            self._cycle += 1
            self._batches = self._pass()
            batch = next(self._batches)
        return batch

    def _pass(self) -> Iterator[torch.Tensor]:
        """One shuffled pass over the target images, seeded by (seed, stage, epoch, cycle)."""
        assert self._stage is not None
        key = f"{self.seed}:{self._stage.name}:{self._epoch}:{self._cycle}"
        generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        order = torch.randperm(len(self._dataset), generator=generator).tolist()
        size = min(self.batch_size, len(order))
        batches = [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
        shards = [b[self._rank :: self._world] for b in batches]
        loader = torch.utils.data.DataLoader(
            self._dataset, batch_sampler=shards, num_workers=self.num_workers
        )
        for images, _placeholder in loader:  # the second item is a placeholder, not a label
            yield images
