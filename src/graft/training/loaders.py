"""DataLoaders for the training loop: stored features for frozen stages, images otherwise."""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from graft.data import ImageDataset, build_transform, load_image, transform_identity
from graft.data.base import Dataset, Samples
from graft.data.text import text_key
from graft.data.transforms import UnreadableImage
from graft.errors import listing
from graft.measure.features import FeatureStore

if TYPE_CHECKING:
    from graft.model import GraftModel
    from graft.training.loop import TrainConfig


#: The most bytes of preprocessed images :func:`decoded_once` keeps (beyond it, files are
#: decoded again as usual): 255 digits at 64 and 96 px take 40 MB.
DECODED_MAX_BYTES = 512 * 2**20


@dataclass
class _Decoded:
    max_bytes: int
    tensors: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)
    bytes: int = 0


_DECODED: contextvars.ContextVar[_Decoded | None] = contextvars.ContextVar(
    "graft_decoded", default=None
)


@contextlib.contextmanager
def decoded_once(max_bytes: int = DECODED_MAX_BYTES) -> Iterator[None]:
    """Within this scope each image file is decoded and preprocessed once per preprocessing.

    ``graft rank`` runs one frozen pass per candidate over the same files, and candidates that
    share an input size share a preprocessing (the bundled EfficientNet-Lites at one size do):
    the later passes take the tensors the first one made. Up to ``max_bytes`` of them are kept,
    and only for the scope; passes with DataLoader workers decode in the workers as usual.
    """
    token = _DECODED.set(_Decoded(max_bytes))
    try:
        yield
    finally:
        _DECODED.reset(token)


class FileLoader:
    """Decode and preprocess one image file (picklable, so DataLoader workers can use it)."""

    def __init__(self, model: GraftModel) -> None:
        self.transform = build_transform(model.data_config, train=False)
        self.channels = model.data_config.channels
        self.identity = transform_identity(model.data_config)

    def __call__(self, path: Path) -> torch.Tensor:
        memo = _DECODED.get()
        key = (self.identity, str(path))
        if memo is not None and key in memo.tensors:
            return memo.tensors[key]
        image = self.transform(load_image(path, self.channels))
        size = image.element_size() * image.nelement()
        if memo is not None and memo.bytes + size <= memo.max_bytes:
            memo.tensors[key], memo.bytes = image, memo.bytes + size
        return image


class FeatureRows(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Rows of stored features with their targets.

    Small feature sets (under ``IN_MEMORY_BYTES``) are read into memory once; larger ones are
    read row by row from the memory-mapped shards, so memory stays bounded.
    """

    IN_MEMORY_BYTES = 512 * 2**20

    def __init__(self, features: Any, targets: np.ndarray) -> None:
        small = len(features) * features.dim * 4 <= self.IN_MEMORY_BYTES
        self.features = torch.as_tensor(features.to_array()) if small else features
        self.targets = torch.as_tensor(targets)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = self.features[i]
        x = row if isinstance(row, torch.Tensor) else torch.as_tensor(np.array(row))
        return x.float(), self.targets[i]


def constant_features_note(rows: FeatureRows, model: GraftModel) -> str | None:
    """A warning line when the frozen backbone gives every image the same features.

    That happens, for example, to EfficientNet-Lite0 at 32 px (every activation of its last
    block is cut to zero): a head trained on such features can only learn the class prior.
    """
    sample = rows.features[: min(len(rows), 512)]
    values = np.asarray(sample.numpy() if isinstance(sample, torch.Tensor) else sample)
    if len(values) < 2 or float(values.std(axis=0).max()) > 1e-6:
        return None
    size = model.data_config.image_size
    return (
        f"  warning: the frozen backbone gives every image the same features at {size} px; "
        "a head trained on them cannot learn. Use a larger --image-size (the backbone's "
        "default is best) or a strategy that fine-tunes the backbone."
    )


class TokenLoader:
    """One row of texts tokenized up front (picklable): item ``i`` is its packed tokens."""

    def __init__(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens

    def __call__(self, i: int) -> torch.Tensor:
        return self.tokens[i]


def stored_features(
    model: GraftModel,
    samples: Samples,
    cfg: TrainConfig,
    *,
    strict: bool = False,
    spread: bool = False,
) -> Any:
    """The frozen backbone's features for ``samples``, from the store (computed if missing).

    With ``spread`` every process of a distributed run calls this and computes its share of the
    missing files (:meth:`~graft.measure.features.FeatureStore.extract`).

    Texts are keyed by their content (sha256 of the UTF-8 bytes) under the backbone's weights
    and text settings; images by their file's bytes under the backbone and its preprocessing.
    An image that fails to decode in this pass is left out with a warning (its row is missing:
    :func:`readable` gives the samples that remain) and listed in ``Features.skipped``;
    ``strict`` stops at it instead (:class:`~graft.errors.DataError` naming the file).
    """
    if samples.texts is not None:
        backbone: Any = model.backbone
        tokens = backbone.encode(samples.texts)
        return FeatureStore.for_cache_dir(cfg.cache_dir).extract(
            backbone,
            list(range(len(samples))),
            keys=[text_key(t) for t in samples.texts],
            load=TokenLoader(tokens),
            order=tokens[:, 1].sum(dim=1).tolist(),  # by length: batches pad little
            transform_id=backbone.text_config.identity,
            batch_size=max(cfg.batch_size, 64),
            num_workers=0,
            progress=cfg.progress,
            spread=spread,
        )
    load = FileLoader(model)
    feats = FeatureStore.for_cache_dir(cfg.cache_dir).extract(
        model.backbone,
        samples.paths,
        load=load,
        transform_id=load.identity,
        batch_size=max(cfg.batch_size, 64),
        num_workers=cfg.num_workers,
        progress=cfg.progress,
        skip_unreadable=not strict,
        spread=spread,
    )
    if feats.skipped:
        warn_unreadable(feats.skipped)
    return feats


def warn_unreadable(skipped: list[tuple[Path, str]]) -> None:
    """One warning listing images that failed to decode where they were read."""
    warnings.warn(
        f"{len(skipped)} images failed to decode and were skipped (pass --strict to stop "
        f"instead):{listing([f'{p}: {why}' for p, why in skipped])}",
        stacklevel=3,
    )


def readable(samples: Samples, feats: Any) -> Samples:
    """``samples`` without the items :func:`stored_features` skipped (aligned with its rows)."""
    if not getattr(feats, "skipped", None):
        return samples
    bad = {p for p, _ in feats.skipped}
    return samples.subset([i for i, p in enumerate(samples.paths) if p not in bad])


def drop_unreadable(data: Dataset, skipped: list[tuple[Path, str]]) -> None:
    """Remove files found unreadable while training from every split of ``data``, and list
    them in ``data.skipped`` (so the run's record names them, as it names load-time skips)."""
    bad = {p: why for p, why in skipped if p not in {q for q, _ in data.skipped}}
    if not bad:
        return
    data.skipped += list(bad.items())
    for name, split in data.splits().items():
        kept = [i for i, p in enumerate(split.paths) if p not in bad]
        if len(kept) < len(split):
            setattr(data, name, split.subset(kept))


def train_sampler(
    targets: np.ndarray, cfg: TrainConfig, generator: torch.Generator
) -> torch.utils.data.Sampler[int]:
    """Random order, or inverse-class-frequency sampling with ``sampler="weighted"``.

    The loop re-seeds ``generator`` at every epoch, so the order is the same in a resumed run
    and in every process of a distributed one.
    """
    if cfg.sampler == "weighted":
        counts = np.bincount(targets)
        weights = 1.0 / counts[targets]
        return torch.utils.data.WeightedRandomSampler(
            weights.tolist(), len(targets), generator=generator
        )
    return torch.utils.data.RandomSampler(range(len(targets)), generator=generator)


def feature_loaders(
    model: GraftModel, data: Dataset, cfg: TrainConfig, accelerator: Any, generator: torch.Generator
) -> tuple[Any, Any]:
    """Train and validation loaders over stored features (extracted once, read by mmap)."""
    out = []
    for name, shuffle in (("train", True), ("val", False)):
        # Every process computes its share of the missing files; all wait for the whole.
        spread = accelerator.num_processes > 1
        feats = stored_features(model, getattr(data, name), cfg, strict=data.strict, spread=spread)
        drop_unreadable(data, feats.skipped)
        samples = getattr(data, name)
        targets = model.task.encode(samples.targets).numpy()
        sampler = train_sampler(samples.targets, cfg, generator) if shuffle else None
        ds = FeatureRows(feats, targets)
        out.append(torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=cfg.batch_size))
    return out[0], out[1]


def evaluate_readable(model: GraftModel, data: Dataset, split: str) -> dict[str, float]:
    """``model.evaluate`` on one split of ``data``; an image that fails to decode there is
    skipped and listed as in training (``data.strict``: the error stops the run)."""
    while True:
        try:
            return model.evaluate(getattr(data, split))
        except UnreadableImage as e:
            if data.strict or e.path is None:
                raise
            SkipUnreadable(data)(e.path, e.reason)


class SkipUnreadable:
    """What a training loader does with an image that fails to decode: warn, list it in the
    dataset's skips and drop it from its splits (so evaluation and later stages never read it).

    With ``--num-workers`` above 0 it runs in a worker process: the warning still names the
    file, but the dataset in the main process is not updated.
    """

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __call__(self, path: Path, reason: str) -> None:
        warn_unreadable([(path, reason)])
        drop_unreadable(self.data, [(path, reason)])


def image_loaders(
    model: GraftModel, data: Dataset, cfg: TrainConfig, generator: torch.Generator
) -> tuple[Any, Any]:
    """Train (augmented) and validation loaders that decode images."""

    def encoded(samples: Samples) -> Samples:
        return samples.with_targets(model.task.encode(samples.targets).numpy())

    if data.train.texts is not None:
        return text_loaders(model, encoded(data.train), encoded(data.val), data, cfg, generator)
    train_tf = build_transform(model.data_config, train=cfg.augment)
    eval_tf = build_transform(model.data_config, train=False)
    skip = None if data.strict else SkipUnreadable(data)
    train = torch.utils.data.DataLoader(
        ImageDataset(encoded(data.train), train_tf, on_unreadable=skip),
        batch_size=cfg.batch_size,
        sampler=train_sampler(data.train.targets, cfg, generator),
        num_workers=cfg.num_workers,
        drop_last=len(data.train) > cfg.batch_size,  # BatchNorm dislikes a final batch of one
    )
    val = torch.utils.data.DataLoader(
        ImageDataset(encoded(data.val), eval_tf, on_unreadable=skip),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
    )
    return train, val


def text_loaders(
    model: GraftModel,
    train: Samples,
    val: Samples,
    data: Dataset,
    cfg: TrainConfig,
    generator: torch.Generator,
) -> tuple[Any, Any]:
    """Train and validation loaders over texts tokenized once (no augmentation for text)."""
    from graft.backbones.text import token_dataset

    backbone: Any = model.backbone
    loader = torch.utils.data.DataLoader
    return (
        loader(
            token_dataset(backbone, train.texts or [], train.targets),
            batch_size=cfg.batch_size,
            sampler=train_sampler(data.train.targets, cfg, generator),
            drop_last=len(train) > cfg.batch_size,
        ),
        loader(token_dataset(backbone, val.texts or [], val.targets), batch_size=cfg.batch_size),
    )
