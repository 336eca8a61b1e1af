"""A dataset's backbone features per split, read from the feature store as ``graft fit`` reads them.

Everything here goes through :func:`graft.training.loaders.stored_features`, the path ``graft fit``
takes for frozen stages, so features measured by ``rank``, ``similarity`` or ``advise`` are the
ones a later fit reuses (same backbone weights, same preprocessing, same files: no second pass).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graft.backbones.base import Backbone
from graft.data.base import Dataset, Samples
from graft.measure.features import Features
from graft.model import GraftModel
from graft.tasks import Classification
from graft.training.loaders import readable, stored_features
from graft.training.loop import TrainConfig


@dataclass(frozen=True)
class SplitFeatures:
    """A dataset's stored features per split, in memory, with what the store did.

    Args:
        features: split name -> ``(n, dim)`` float32 features.
        targets: split name -> targets as the dataset holds them.
        computed: files that ran through the backbone in this call.
        reused: files whose features were already stored.
        seconds: wall time of the extraction (or of the reads).
    """

    features: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    computed: int
    reused: int
    seconds: float

    def joined(self, splits: Sequence[str] = ("train", "val")) -> tuple[np.ndarray, np.ndarray]:
        """Features and targets of several splits stacked (for scores: every labelled row)."""
        names = [s for s in splits if s in self.features]
        x = np.concatenate([self.features[s] for s in names])
        y = np.concatenate([self.targets[s] for s in names])
        return x, y


def store_config(
    cache_dir: str | None = None, batch_size: int = 64, num_workers: int = 0, progress: bool = False
) -> TrainConfig:
    """The :class:`~graft.training.loop.TrainConfig` the feature store reads its options from."""
    return TrainConfig(
        cache_dir=cache_dir, batch_size=batch_size, num_workers=num_workers, progress=progress
    )


def samples_features(backbone: Backbone, samples: Samples, cfg: TrainConfig) -> Features:
    """Stored features of ``samples`` (computed once if missing), as fit reads them."""
    # stored_features reads the model's backbone and preprocessing only; the head is a stand-in.
    model = GraftModel(backbone, Classification.spec_for(["a", "b"]))
    return stored_features(model, samples, cfg)


def split_features(
    backbone: Backbone, data: Dataset, cfg: TrainConfig, splits: Sequence[str] = ("train", "val")
) -> SplitFeatures:
    """Features of the dataset's ``splits`` (those it has) from the store, in one pass: the
    splits' missing files are computed together (a short pass per split would pay the backbone's
    warm-up and the last, partial batch once per split)."""
    start = time.perf_counter()
    available = data.splits()
    names = [n for n in splits if n in available and len(available[n])]
    if not names:
        return SplitFeatures({}, {}, 0, 0, time.perf_counter() - start)
    stored = samples_features(backbone, Samples.concat([available[n] for n in names]), cfg)
    rows = stored.to_array()
    feats, targets, at = {}, {}, 0
    for name in names:
        kept = readable(available[name], stored)  # less any unreadable file, in the rows' order
        feats[name], targets[name] = rows[at : at + len(kept)], kept.targets
        at += len(kept)
    return SplitFeatures(
        feats, targets, stored.computed, stored.reused, time.perf_counter() - start
    )
