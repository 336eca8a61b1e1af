"""Measure before training: rank candidate backbones, the gap between two collections, the store.

The workflows behind ``graft rank``, ``graft similarity`` and ``graft cache``. They load the data
and the backbones, then measure with :mod:`graft.measure` on features read from the
:class:`~graft.measure.features.FeatureStore` the way ``graft fit`` reads them
(:mod:`graft.measure.stored`), so a later fit reuses them without a second backbone pass.

Example::

    ranking = graft.rank("photos/", backbones=["efficientnet_lite0", "timm:resnet18"])
    print(ranking.table())
    gap = graft.similarity("imagenet-like/", "photos/")
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.backbones import DEFAULT_BACKBONE
from graft.backbones.base import Backbone
from graft.backbones.engines import clear_engines, remembered_races
from graft.data.base import Dataset, Samples
from graft.data.images import list_images
from graft.data.text import is_text_folder, list_texts, read_text
from graft.errors import ConfigError, DataError
from graft.measure.advise import at_size
from graft.measure.features import FeatureStore
from graft.measure.gap import GapReport, domain_gap
from graft.measure.scores import SCORES
from graft.measure.source import DEFAULT_SCORE, measure_score
from graft.measure.stored import samples_features, split_features, store_config
from graft.training.loaders import decoded_once
from graft.training.loop import TrainConfig
from graft.workflows import _inputs


def parse_candidate(text: str) -> tuple[str, bool, int | None]:
    """``name[@random][@SIZE]`` -> (name, pretrained, image_size), e.g. ``timm:resnet18@random``."""
    name, *tags = text.strip().split("@")
    pretrained, size = True, None
    for tag in tags:
        if tag == "random":
            pretrained = False
        elif tag.isdigit():
            size = int(tag)
        else:
            raise ConfigError(
                f"--backbones: {text!r}: unknown tag @{tag}; use @random (random initialisation) "
                "or @SIZE (input size in pixels), e.g. timm:resnet18@random@112"
            )
    if not name:
        raise ConfigError(f"--backbones: {text!r} has no backbone name")
    return name, pretrained, size


@dataclass(frozen=True)
class RankRow:
    """One candidate: its score, the time it took and what the feature store did."""

    backbone: str
    score: float | None
    seconds: float
    computed: int
    reused: int
    dim: int
    note: str = ""
    fit_flags: str = ""


@dataclass(frozen=True)
class Ranking:
    """Candidate backbones ranked by a transferability score on the user's data (best first)."""

    score: str
    data: str
    rows: tuple[RankRow, ...]
    seconds: float = 0.0
    citation: str = field(default="")

    @property
    def best(self) -> RankRow | None:
        scored = [r for r in self.rows if r.score is not None]
        return scored[0] if scored else None

    def recommendation(self) -> str:
        best = self.best
        if best is None:
            return "no candidate could be scored; see the notes"
        others = [r for r in self.rows if r.score is not None and r is not best]
        margin = ""
        if others and best.score is not None and others[0].score is not None:
            margin = f" ({best.score - others[0].score:+.4g} over {others[0].backbone})"
        return (
            f"recommended: {best.backbone} (highest {self.score}{margin}); its features are stored, "
            f"so `graft fit {self.data} {best.fit_flags}` starts without a backbone pass"
        )

    def table(self) -> str:
        lines = [f"{'#':>2}  {'backbone':<36} {self.score:>10} {'seconds':>8}  features"]
        for i, r in enumerate(self.rows, 1):
            value = f"{r.score:10.4f}" if r.score is not None else f"{'-':>10}"
            store = f"{r.computed} computed, {r.reused} reused, dim {r.dim}"
            lines.append(f"{i:>2}  {r.backbone:<36} {value} {r.seconds:8.2f}  {store}")
            if r.note:
                lines.append(f"    {r.note}")
        return "\n".join([*lines, self.recommendation()])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "best": self.best.backbone if self.best else None}


def rank(
    data: str | Path | Dataset,
    *,
    backbones: Sequence[str | Backbone],
    score: str = DEFAULT_SCORE,
    task: str | None = None,
    image_size: int | None = None,
    max_length: int | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    cache_dir: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> Ranking:
    """Rank candidate backbones for ``data`` by a transferability score on stored features.

    Args:
        data: an image folder or table, or a loaded Dataset (scored on train + val).
        backbones: candidates: bundled names, ``timm:<name>``, each optionally tagged
            ``@random`` (random initialisation) and ``@SIZE`` (input size), or Backbone objects.
        score: a registered score (``graft.measure.scores.SCORES.names()``); LEEP/NCE use the source
            classifier kept with the backbone.
        task: ``classification`` or ``regression`` (inferred when None).
        image_size: input size for candidates without an ``@SIZE`` tag.
        max_length: texts: tokens per text for every text candidate.
        text_column: a table column holding texts (the data are texts).
        label_column: a table column holding class labels.
        cache_dir: feature store folder (the one ``graft fit --cache-dir`` reads).
        batch_size: images per backbone forward.
        num_workers: DataLoader processes decoding images.
        seed: the data split, and the initialisation of ``@random`` candidates (as in fit).
        progress: progress bars.
    """
    started = time.perf_counter()
    citation = SCORES.get(score).citation
    dataset = _inputs.dataset(
        data, task=task, seed=seed, text_column=text_column, label_column=label_column
    )
    cfg = store_config(cache_dir, batch_size, num_workers, progress)
    # Candidates at one input size share the decoded images, candidates that differ only in
    # their @SIZE one network, and a short pass's engine race the challenger won is not run
    # again for that architecture (graft.backbones.engines.remembered_races).
    built: dict[tuple[str, bool], Backbone] = {}
    with decoded_once(), remembered_races():
        rows = [
            _rank_row(cand, dataset, cfg, score, seed, image_size, max_length, built)
            for cand in backbones
        ]
    rows.sort(key=lambda r: -np.inf if r.score is None else r.score, reverse=True)
    return Ranking(score, str(dataset.source), tuple(rows), time.perf_counter() - started, citation)


def _rank_row(
    cand: str | Backbone,
    dataset: Dataset,
    cfg: TrainConfig,
    score: str,
    seed: int,
    image_size: int | None,
    max_length: int | None,
    built: dict[tuple[str, bool], Backbone],
) -> RankRow:
    """One candidate of :func:`rank`: built (or taken from ``built`` at another input size),
    its features stored, scored."""
    t0 = time.perf_counter()
    if isinstance(cand, Backbone):
        bb = _inputs.backbone(cand, image_size=image_size, max_length=max_length)
        label = cand.spec.name
        flags = f"--backbone {label}"
    else:
        name, pretrained, size = parse_candidate(cand)
        bb = _candidate(name, pretrained, size or image_size, seed, max_length, built)
        label = cand.strip()
        flags = f"--backbone {name}" + " --no-pretrained" * (not pretrained)
        flags += f" --image-size {size or image_size}" if (size or image_size) else ""
    feats = split_features(bb, dataset, cfg)
    x, y = feats.joined()
    try:
        value, note = measure_score(score, bb, x, y, dataset.task), ""
    except (ConfigError, DataError) as e:
        value, note = None, str(e)
    return RankRow(
        label,
        value,
        time.perf_counter() - t0,
        feats.computed,
        feats.reused,
        x.shape[1],
        note,
        flags,
    )


def _candidate(
    name: str,
    pretrained: bool,
    size: int | None,
    seed: int,
    max_length: int | None,
    built: dict[tuple[str, bool], Backbone],
) -> Backbone:
    """Candidate ``name`` at ``size``: an image network built once per (name, pretrained) and
    shared by its sizes (the same weights: ``@random`` ones from the same seed), each size a
    shallow copy with its own preprocessing."""
    key = (name, pretrained)
    if key not in built:
        torch.manual_seed(seed)  # the same random initialisation graft fit --seed makes
        bb = _inputs.backbone(name, pretrained=pretrained, max_length=max_length)  # native size
        if bb.input_kind != "image":  # a text encoder: an input size means nothing to it
            return bb
        built[key] = bb
    if size is None:
        return built[key]
    try:
        return at_size(built[key], size)
    except ValueError as e:
        raise ConfigError(f"image_size (--image-size): {e}") from e


def _samples(data: str | Path | Dataset, seed: int, text_column: str | None = None) -> Samples:
    """Every item of a dataset, or of a folder of images or ``.txt`` files (no classes needed)."""
    if isinstance(data, (str, Path)) and Path(data).is_dir():
        if is_text_folder(Path(data)):
            files = list_texts(Path(data))
            texts = [read_text(f) for f in files]
            return Samples(files, np.zeros(len(files)), texts)
        paths = list_images(Path(data))
        if not paths:
            raise DataError(
                f"{data}: no image files below this folder; point at a folder of images"
            )
        return Samples(paths, np.zeros(len(paths)))
    dataset = _inputs.dataset(data, seed=seed, text_column=text_column)
    merged = Samples.concat(list(dataset.splits().values()))
    return merged.with_targets(np.zeros(len(merged)))


def similarity(
    source: str | Path | Dataset,
    target: str | Path | Dataset,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    pretrained: bool = True,
    image_size: int | None = None,
    max_length: int | None = None,
    text_column: str | None = None,
    cache_dir: str | None = None,
    batch_size: int = 64,
    max_samples: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> GapReport:
    """The domain gap between two image (or text) collections on one backbone's stored features.

    MMD², proxy A-distance and CORAL distance (see :mod:`graft.measure.gap`), with a level (near,
    moderate, far) and a one-line reading of what it implies for the transfer strategy.

    Args:
        source: images like the ones the backbone (or an earlier model) was trained on.
        target: the user's images (a folder, with or without class subfolders, or a table).
        backbone: the network whose features are compared.
        weights: a local weights file for the backbone.
        pretrained: False compares random-initialisation features.
        image_size: input size override.
        max_length: texts: tokens per text.
        text_column: tables: the column holding texts (both sides).
        cache_dir: feature store folder.
        batch_size: images per backbone forward.
        max_samples: at most this many images per side enter each measure.
        seed: subsampling and cross-validation seed.
        progress: progress bars.
    """
    torch.manual_seed(seed)
    bb = _inputs.backbone(
        backbone, weights=weights, pretrained=pretrained, image_size=image_size,
        max_length=max_length,
    )  # fmt: skip
    cfg = store_config(cache_dir, batch_size, 0, progress)
    sides = []
    for data in (source, target):
        sides.append(samples_features(bb, _samples(data, seed, text_column), cfg).to_array())
    if max(float(x.std(axis=0).max()) for x in sides) <= 1e-6:
        raise DataError(
            f"{bb.spec.name} gives the same features for every image at "
            f"{bb.data_config.image_size} px, so the gap cannot be measured; pass a larger "
            "--image-size (efficientnet_lite0 needs more than 32)"
        )
    gap = domain_gap(sides[0], sides[1], max_samples=max_samples, seed=seed)
    return replace(gap, items=f"{bb.input_kind}s")


def cache_info(*, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """The feature store's entries: backbone, preprocessing, rows, bytes, last use."""
    return FeatureStore.for_cache_dir(cache_dir).info()


def cache_clear(*, backbone: str | None = None, cache_dir: str | None = None) -> int:
    """Delete stored features (all, or one backbone's) and return the bytes freed; clearing
    all also deletes the cached ONNX exports beside them (``engines/``).

    Args:
        backbone: a backbone name, architecture, identity or entry folder; None clears all.
        cache_dir: the cache folder (features in ``features/``, exports in ``engines/``).
    """
    store = FeatureStore.for_cache_dir(cache_dir)
    freed = store.clear(backbone)
    if backbone is None:
        freed += clear_engines(store.root.parent)
    return freed
