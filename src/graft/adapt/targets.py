"""The unlabeled-target batch iterator of the alignment methods (DANN, CORAL, MMD).

Every step of a stage that runs the backbone, an alignment method draws a batch of target
images. Batches are drawn in an order seeded from (seed, stage, epoch) and cycled when the
target set is smaller than the source set, so a run, and a run resumed from a checkpoint, are
reproducible. In a distributed run each process takes its share of every batch, like the
source batches. Target labels are never read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graft.errors import ConfigError

if TYPE_CHECKING:
    from graft.model import GraftModel
    from graft.strategies.base import Stage


class TargetBatches:
    """Seeded, cycled, sharded batches of unlabeled target images.

    Args:
        paths: unlabeled target image files (at least 2).
        batch_size: target images per step (all processes together), usually the source's.
        seed: seeds the order, with the stage and the epoch.
        augment: the training augmentation on target images (as on source images).
        num_workers: DataLoader workers for decoding target images.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        batch_size: int = 32,
        seed: int = 0,
        augment: bool = True,
        num_workers: int = 0,
    ) -> None:
        if len(paths) < 2:
            raise ConfigError(f"domain alignment needs at least 2 target images, got {len(paths)}")
        self.paths = list(paths)
        self.batch_size, self.seed = batch_size, seed
        self.augment, self.num_workers = augment, num_workers
        self.dataset: Any = None
        self._stage: Stage | None = None
        self._batches: Iterator[torch.Tensor] = iter(())
        self._epoch, self._cycle = -1, 0
        self._rank, self._world = 0, 1

    def start(self, model: GraftModel, stage: Stage, rank: int = 0, world: int = 1) -> None:
        """Build the target images' dataset for ``stage`` (process ``rank`` of ``world``)."""
        from graft.data import ImageDataset, build_transform
        from graft.data.unlabeled import unlabeled_samples

        self._stage, self._rank, self._world = stage, rank, world
        transform = build_transform(model.data_config, train=self.augment)
        self.dataset = ImageDataset(unlabeled_samples(self.paths), transform)
        self._epoch, self._cycle = -1, 0

    def next(self, progress: float) -> torch.Tensor:
        """The next target batch at the stage's ``progress`` (0 -> 1)."""
        if self._stage is None:
            raise RuntimeError("TargetBatches.start(model, stage) must run first")
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
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        size = min(self.batch_size, len(order))
        batches = [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
        shards = [b[self._rank :: self._world] for b in batches]
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=shards, num_workers=self.num_workers
        )
        for images, _placeholder in loader:  # the second item is a placeholder, not a label
            yield images


__all__ = ["TargetBatches"]
