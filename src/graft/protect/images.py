"""Image batches for the regularizers and the retention report: EWC's Fisher, the reference set.

The batches are read in a fixed, seeded order with the evaluation preprocessing, so EWC's
importance and the retention report do not depend on the training augmentation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graft.data.base import Samples
from graft.errors import ConfigError

if TYPE_CHECKING:
    from graft.data.base import Dataset
    from graft.model import GraftModel

#: Cap on reference images for the retention report (two forward passes each).
RETENTION_SAMPLES = 512


def fisher_batches(
    model: GraftModel, dataset: Dataset, ewc_data: str | Path | None
) -> Callable[[], Iterable[Any]]:
    """Batches for EWC's Fisher: ``ewc_data`` images, or the target training split (labeled)."""
    if ewc_data is not None and model.backbone.source_head is None:
        raise ConfigError(
            f"--ewc-data {ewc_data}: backbone {model.backbone.spec.name!r} has no source "
            "classifier, so the Fisher cannot be measured on source images without labels; "
            "drop --ewc-data (EWC then uses the target's labels)"
        )

    def build() -> Iterable[Any]:
        if ewc_data is None:
            train = dataset.train
            samples = train.with_targets(model.task.encode(train.targets).numpy())
        else:
            samples = unlabeled(ewc_data)
        return image_loader(model, samples, batch_size=32, shuffle=True)

    return build


def unlabeled(source: str | Path) -> Samples:
    """The images of a folder or a table of paths, without labels."""
    from graft.data.unlabeled import load_unlabeled, unlabeled_samples

    return unlabeled_samples(load_unlabeled(source))


def image_loader(model: GraftModel, samples: Samples, *, batch_size: int, shuffle: bool) -> Any:
    """A loader of ``samples`` as ``model`` reads them (images or tokenized texts; no
    augmentation), in a seeded order."""
    dataset = model.dataset_for(samples)
    generator = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator
    )


def reference_samples(dataset: Dataset, given: str | Path | None) -> tuple[Samples, str]:
    """The retention reference set and its description: ``given``, else test, val or train."""
    if given is not None:
        samples = unlabeled(given)
        return samples, f"{len(samples)} images of {given}"
    items = f"{getattr(dataset, 'input_kind', 'image')}s"  # images or texts
    for split in ("test", "val"):
        part = dataset.splits().get(split)
        if part is not None and len(part):
            return part, f"target {split} split, {min(len(part), RETENTION_SAMPLES)} {items}"
    return (
        dataset.train,
        f"target train split, {min(len(dataset.train), RETENTION_SAMPLES)} {items}",
    )


__all__ = ["RETENTION_SAMPLES", "fisher_batches", "image_loader", "reference_samples", "unlabeled"]
