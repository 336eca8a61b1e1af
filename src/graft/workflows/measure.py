"""Measure before training: a dataset's features for a backbone, scores, gaps and rankings.

Everything here reads the backbone's output from the :class:`~graft.measure.features.FeatureStore`
through :func:`graft.training.loaders.stored_features`, the same path ``graft fit`` takes for frozen
stages, so features measured by ``rank``, ``similarity`` or ``advise`` are the ones a later fit
reuses (same backbone weights, same preprocessing, same files: no second backbone pass).
Source-classifier probabilities (for LEEP and NCE) come from the stored features through the
backbone's kept ``source_head``, never from another pass over the images.

Example::

    ranking = graft.rank("photos/", backbones=["efficientnet_lite0", "timm:resnet18"])
    print(ranking.table())
    gap = graft.similarity("imagenet-like/", "photos/")
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.backbones.base import Backbone
from graft.config import DEFAULT_BACKBONE
from graft.data.base import Dataset, Samples
from graft.errors import ConfigError, DataError
from graft.measure.gap import GapReport, domain_gap

DEFAULT_SCORE = "logme"
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "backbones" / "reference"


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
) -> Any:
    """The :class:`~graft.training.loop.TrainConfig` the feature store reads its options from."""
    from graft.training.loop import TrainConfig

    return TrainConfig(
        cache_dir=cache_dir, batch_size=batch_size, num_workers=num_workers, progress=progress
    )


def samples_features(backbone: Backbone, samples: Samples, cfg: Any) -> Any:
    """Stored features of ``samples`` (computed once if missing), as fit reads them."""
    from graft.model import GraftModel
    from graft.tasks.base import Classification
    from graft.training.loaders import stored_features

    # stored_features reads the model's backbone and preprocessing only; the head is a stand-in.
    model = GraftModel(backbone, Classification.spec_for(["a", "b"]))
    return stored_features(model, samples, cfg)


def split_features(
    backbone: Backbone, data: Dataset, cfg: Any, splits: Sequence[str] = ("train", "val")
) -> SplitFeatures:
    """Features of the dataset's ``splits`` (those it has) from the store."""
    start = time.perf_counter()
    feats, targets, computed, reused = {}, {}, 0, 0
    available = data.splits()
    for name in splits:
        if name not in available or not len(available[name]):
            continue
        stored = samples_features(backbone, available[name], cfg)
        feats[name] = stored.to_array()
        targets[name] = available[name].targets
        computed, reused = computed + stored.computed, reused + stored.reused
    return SplitFeatures(feats, targets, computed, reused, time.perf_counter() - start)


def source_probabilities(backbone: Backbone, features: np.ndarray) -> np.ndarray:
    """Softmax of the backbone's original classifier on stored features (no image pass).

    Raises:
        ConfigError: the backbone kept no source classifier (LEEP and NCE need one).
    """
    head = backbone.source_head
    if head is None:
        raise ConfigError(
            f"backbone {backbone.spec.name!r} has no source classifier, so LEEP/NCE cannot be "
            "computed; use --score logme (or hscore)"
        )
    out = []
    with torch.inference_mode():
        for start in range(0, len(features), 4096):
            x = torch.as_tensor(features[start : start + 4096], dtype=torch.float32)
            out.append(torch.softmax(head(x).double(), dim=1).numpy())
    return np.concatenate(out)


def measure_score(
    name: str, backbone: Backbone, features: np.ndarray, targets: np.ndarray, task: str
) -> float:
    """The registered score ``name`` on stored features (source probabilities if it needs them).

    Raises:
        ConfigError: the task has no scores (multi-label, multi-task) or the score does not
            apply to it.
    """
    from graft.measure.scores import SCORES, score

    if task not in ("classification", "regression"):
        raise ConfigError(
            f"transferability scores cover classification and regression, not {task}; "
            "rank on one of its targets instead"
        )
    spec = SCORES.get(name)
    probs = source_probabilities(backbone, features) if spec.needs == "source_probs" else None
    return score(name, targets=targets, task=task, features=features, source_probs=probs)  # type: ignore[arg-type]


def reference_features(backbone: Backbone) -> tuple[np.ndarray | None, str]:
    """The bundled backbone's features of its reference sample at this preprocessing.

    The reference sample stands in for the source data (there is no ImageNet offline): crops of
    natural photographs, see ``tools/make_reference_sample.py``.

    Returns:
        ``(features, note)``: features ``(n, dim)`` float32, or None with the reason.
    """
    from graft.data.transforms import transform_identity

    spec = backbone.spec
    path = REFERENCE_DIR / f"{spec.name}.npz"
    if spec.source != "bundled" or not path.exists():
        return None, f"no reference sample is kept for {spec.name!r} ({spec.source} weights)"
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        wanted = transform_identity(backbone.data_config)
        for size, identity in meta["sizes"].items():
            if identity == wanted:
                ref = npz[f"size{size}"].astype(np.float32)
                return ref, f"{len(ref)} crops of natural photographs at {size} px"
    sizes = ", ".join(meta["sizes"])
    return None, (
        f"the reference sample of {spec.name!r} covers input sizes {sizes} px, not "
        f"{backbone.data_config.image_size}; pass --image-size with one of them to measure it"
    )


def gap_to_source(
    backbone: Backbone, features: np.ndarray, seed: int = 0
) -> tuple[GapReport | None, str]:
    """The domain gap between ``features`` and the backbone's reference sample, with a note."""
    ref, note = reference_features(backbone)
    if ref is None:
        return None, note
    return domain_gap(ref, features, seed=seed), note


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
        cache_dir: feature store folder (the one ``graft fit --cache-dir`` reads).
        batch_size: images per backbone forward.
        num_workers: DataLoader processes decoding images.
        seed: the data split, and the initialisation of ``@random`` candidates (as in fit).
        progress: progress bars.
    """
    from graft.backbones import create as make_backbone
    from graft.data import load as load_data
    from graft.measure.scores import SCORES

    started = time.perf_counter()
    citation = SCORES.get(score).citation
    dataset = load_data(data, task=task, seed=seed)
    cfg = store_config(cache_dir, batch_size, num_workers, progress)
    rows = []
    for cand in backbones:
        t0 = time.perf_counter()
        if isinstance(cand, Backbone):
            bb, label = make_backbone(cand, image_size=image_size), cand.spec.name
            flags = f"--backbone {label}"
        else:
            name, pretrained, size = parse_candidate(cand)
            torch.manual_seed(seed)  # the same random initialisation graft fit --seed makes
            bb = make_backbone(name, pretrained=pretrained, image_size=size or image_size)
            label = cand.strip()
            flags = f"--backbone {name}" + " --no-pretrained" * (not pretrained)
            flags += f" --image-size {size or image_size}" if (size or image_size) else ""
        feats = split_features(bb, dataset, cfg)
        x, y = feats.joined()
        try:
            value, note = measure_score(score, bb, x, y, dataset.task), ""
        except (ConfigError, DataError) as e:
            value, note = None, str(e)
        rows.append(
            RankRow(
                label,
                value,
                time.perf_counter() - t0,
                feats.computed,
                feats.reused,
                x.shape[1],
                note,
                flags,
            )
        )
    rows.sort(key=lambda r: -np.inf if r.score is None else r.score, reverse=True)
    return Ranking(score, str(dataset.source), tuple(rows), time.perf_counter() - started, citation)


def _paths(data: str | Path | Dataset, seed: int) -> list[Path]:
    """Every image of a dataset, or of a folder (class subfolders not required)."""
    from graft.data import load as load_data
    from graft.data.images import list_images

    if isinstance(data, (str, Path)) and Path(data).is_dir():
        paths = list_images(Path(data))
        if not paths:
            raise DataError(
                f"{data}: no image files below this folder; point at a folder of images"
            )
        return paths
    dataset = load_data(data, seed=seed)
    return [p for s in dataset.splits().values() for p in s.paths]


def similarity(
    source: str | Path | Dataset,
    target: str | Path | Dataset,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    pretrained: bool = True,
    image_size: int | None = None,
    cache_dir: str | None = None,
    batch_size: int = 64,
    max_samples: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> GapReport:
    """The domain gap between two image collections on one backbone's stored features.

    MMD², proxy A-distance and CORAL distance (see :mod:`graft.measure.gap`), with a level (near,
    moderate, far) and a one-line reading of what it implies for the transfer strategy.

    Args:
        source: images like the ones the backbone (or an earlier model) was trained on.
        target: the user's images (a folder, with or without class subfolders, or a table).
        backbone: the network whose features are compared.
        weights: a local weights file for the backbone.
        pretrained: False compares random-initialisation features.
        image_size: input size override.
        cache_dir: feature store folder.
        batch_size: images per backbone forward.
        max_samples: at most this many images per side enter each measure.
        seed: subsampling and cross-validation seed.
        progress: progress bars.
    """
    from graft.backbones import create as make_backbone

    torch.manual_seed(seed)
    bb = make_backbone(backbone, weights=weights, pretrained=pretrained, image_size=image_size)
    cfg = store_config(cache_dir, batch_size, 0, progress)
    sides = []
    for data in (source, target):
        paths = _paths(data, seed)
        sides.append(samples_features(bb, Samples(paths, np.zeros(len(paths))), cfg).to_array())
    if max(float(x.std(axis=0).max()) for x in sides) <= 1e-6:
        raise DataError(
            f"{bb.spec.name} gives the same features for every image at "
            f"{bb.data_config.image_size} px, so the gap cannot be measured; pass a larger "
            "--image-size (efficientnet_lite0 needs more than 32)"
        )
    return domain_gap(sides[0], sides[1], max_samples=max_samples, seed=seed)


def cache_info(*, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """The feature store's entries: backbone, preprocessing, rows, bytes, last use."""
    from graft.measure.features import FeatureStore

    return FeatureStore(cache_dir).info()


def cache_clear(*, backbone: str | None = None, cache_dir: str | None = None) -> int:
    """Delete stored features (all, or one backbone's) and return the bytes freed.

    Args:
        backbone: a backbone name, architecture, identity or entry folder; None clears all.
        cache_dir: feature store folder.
    """
    from graft.measure.features import FeatureStore

    return FeatureStore(cache_dir).clear(backbone)
