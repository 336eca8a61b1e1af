"""Decode any image into the mode a backbone expects, preprocess it, and serve it to torch.

Preprocessing comes from the backbone's :class:`~graft.backbones.base.DataConfig` (size, mean,
std, interpolation, crop fraction) through timm's ``create_transform``, so it matches how the
weights were trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from graft.data.base import Samples
from graft.data.images import too_large
from graft.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

    from graft.backbones.base import DataConfig

#: Bump when decoding or preprocessing changes, so stored features are recomputed.
TRANSFORM_VERSION = 1

#: Training augmentation: mild random resized crops (digits and text must stay legible).
TRAIN_SCALE = (0.7, 1.0)
TRAIN_RATIO = (0.9, 1.1)


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale to 8-bit on a fixed scale (never stretched per image)."""
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        top = 1.0 if a.size and np.nanmax(a) <= 1.0 else 255.0
    elif im.mode.startswith("I;16") or (a.size and a.max() > 255):
        top = 65535.0
    else:
        top = 255.0
    a = np.clip(np.nan_to_num(a) * (255.0 / top), 0, 255)
    return Image.fromarray(np.round(a).astype(np.uint8))


def _flatten_alpha(im: Image.Image) -> Image.Image:
    """Composite a transparent image on white (transparent areas are background, not black)."""
    from PIL import Image

    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_mode(im: Image.Image, channels: int) -> Image.Image:
    """Convert a decoded image to ``RGB`` (channels=3) or ``L`` (channels=1).

    Handles greyscale and bilevel, RGBA/LA/PA and palette transparency (composited on white),
    palette, CMYK, YCbCr, and 16/32-bit greyscale (``I;16``, ``I``, ``F``, scaled to 8 bits).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if im.mode.startswith("I") or im.mode == "F":
        im = _to_8bit(im)
    elif im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        im.mode == "P" and "transparency" in im.info
    ):
        im = _flatten_alpha(im)
    target = "RGB" if channels == 3 else "L"
    return im if im.mode == target else im.convert(target)


def load_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Open, fully decode and convert an image file (see :func:`to_mode`).

    EXIF orientation is applied, so a phone photo is upright as its owner saw it.

    Raises:
        DataError: the file is missing or is not a readable image (names the file).
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            big = too_large(im)
            if big:
                raise UnreadableImage(f"{path}: {big}", path=Path(path), reason=big)
            im.load()
            oriented = ImageOps.exif_transpose(im) or im
            return to_mode(oriented, channels)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except UnreadableImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = f"not a readable image ({type(e).__name__}: {e})"
        raise UnreadableImage(f"{path}: {reason}", path=Path(path), reason=reason) from e


class UnreadableImage(DataError):
    """An image file that fails to decode where it is read; names the file and the reason."""

    def __init__(self, message: str, *, path: Path | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.path, self.reason = path, reason or message


class ImageTransform:
    """A PIL image → normalised tensor transform that knows the channel count it produces.

    Shape:
        - Output: ``(channels, height, width)`` float32.
    """

    def __init__(self, config: DataConfig, inner: Callable[[Any], Any], train: bool) -> None:
        self.config = config
        self.inner = inner
        self.train = train

    @property
    def channels(self) -> int:
        return self.config.channels

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.inner(to_mode(image, self.channels))

    def __repr__(self) -> str:
        return f"ImageTransform(train={self.train}, {self.inner})"


def build_transform(
    config: DataConfig, *, train: bool = False, augment: bool = True, hflip: bool = False
) -> ImageTransform:
    """The preprocessing for ``config``: deterministic for evaluation, lightly augmented for training.

    Evaluation resizes to ``image_size / crop_pct``, center-crops ``image_size`` and normalises.
    Training takes random resized crops covering 70-100% of the image with near-square aspect
    ratios; horizontal flips are off unless ``hflip`` (digits and text are not mirror-symmetric).

    Args:
        config: the backbone's preprocessing.
        train: training mode (random augmentation) instead of evaluation.
        augment: with ``train``, False gives the evaluation transform.
        hflip: flip horizontally with probability 0.5 in training.
    """
    from timm.data import create_transform

    is_training = train and augment
    common: dict[str, Any] = {
        "input_size": config.input_size,
        "interpolation": config.interpolation,
        "mean": config.mean,
        "std": config.std,
    }
    if is_training:
        inner = create_transform(
            **common,
            is_training=True,
            scale=TRAIN_SCALE,
            ratio=TRAIN_RATIO,
            hflip=0.5 if hflip else 0.0,
            color_jitter=0.0,
        )
    else:
        inner = create_transform(**common, is_training=False, crop_pct=config.crop_pct)
    return ImageTransform(config, inner, is_training)


def transform_identity(config: DataConfig, train: bool = False) -> str:
    """A stable key for the preprocessing of ``config`` (the feature store keys features by it)."""
    blob = json.dumps(
        {"config": config.to_dict(), "train": train, "version": TRANSFORM_VERSION},
        sort_keys=True,
    ).encode()
    return f"{'train' if train else 'eval'}-v{TRANSFORM_VERSION}-{hashlib.sha256(blob).hexdigest()[:16]}"


class ImageDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images of a :class:`Samples` split, decoded and transformed on access.

    Args:
        samples: paths and targets.
        transform: a PIL image → tensor callable, usually from :func:`build_transform`.
        channels: image mode to decode to (1 or 3); default the transform's ``channels``, or 3.

        on_unreadable: training only: called with ``(path, reason)`` for a file that fails to
            decode, which is then replaced in its batch by the next file that decodes (batches
            keep their size; the file is dropped from the data by the caller). None: the
            :class:`~graft.errors.DataError` stops the pass (evaluation, ``--strict``).

    Shape:
        - Input image: ``(channels, height, width)`` float32.
        - Target: integer targets give an ``int64`` scalar (a class index); float targets of
          shape ``(n, t)`` give a ``float32`` vector ``(t,)``.
    """

    def __init__(
        self,
        samples: Samples,
        transform: Callable[[Image.Image], torch.Tensor],
        *,
        channels: int | None = None,
        on_unreadable: Callable[[Path, str], None] | None = None,
    ) -> None:
        self.samples = samples
        self.transform = transform
        self.channels = channels or int(getattr(transform, "channels", 3))
        self.on_unreadable = on_unreadable
        self._integer = np.issubdtype(np.asarray(samples.targets).dtype, np.integer)
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def _decode(self, i: int) -> tuple[int, Image.Image]:
        """Item ``i``'s image, or with ``on_unreadable`` the next one that decodes."""
        n = len(self.samples)
        for j in (i + k for k in range(n)):
            j %= n
            if j in self._bad:
                continue
            try:
                return j, load_image(self.samples.paths[j], self.channels)
            except UnreadableImage as e:
                if self.on_unreadable is None:
                    raise
                self._bad.add(j)
                self.on_unreadable(self.samples.paths[j], e.reason)
        raise DataError(f"none of the {n} images decodes; see the warnings above")

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i, image = self._decode(i)
        x = self.transform(image)
        target = self.samples.targets[i]
        if self._integer:
            return x, torch.tensor(int(target), dtype=torch.int64)
        return x, torch.as_tensor(np.asarray(target, dtype=np.float32))
