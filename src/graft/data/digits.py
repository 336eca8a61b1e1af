"""Real handwritten digits as an image folder or table, offline: scikit-learn's ``load_digits``.

1,797 scans of digits written by 43 people (UCI "Optical Recognition of Handwritten Digits"),
8x8 pixels with 17 grey levels. They are written as dark ink on white paper, given a one-pixel
paper margin (so evaluation's center crop does not cut strokes) and upscaled bicubically, which
turns the blocky 8x8 grid into smooth strokes closer to the photos ImageNet backbones know.
The demo and many tests use them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from graft.config import SPLIT_FRACTION
from graft.errors import DataError
from graft.io import follow_umask

MARKER = ".graft-digits.json"
FORMAT = 1


def _digit_images(per_class: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices into load_digits, images 0..16 (n, 8, 8), labels) for the chosen subset."""
    from sklearn.datasets import load_digits

    d = load_digits()
    index = np.arange(len(d.target))
    if per_class is not None:
        if per_class < 1:
            raise ValueError(f"per_class must be at least 1, got {per_class}")
        rng = np.random.default_rng(seed)
        chosen = []
        for c in range(10):
            members = np.flatnonzero(d.target == c)
            if per_class > len(members):
                raise ValueError(f"per_class={per_class}: digit {c} has only {len(members)} images")
            chosen.append(np.sort(rng.choice(members, per_class, replace=False)))
        index = np.concatenate(chosen)
    return index, d.images[index], d.target[index]


def _render(image: np.ndarray, size: int) -> object:
    from PIL import Image

    ink = np.pad(image, 1) / 16.0  # one pixel of paper around the 8x8 scan
    paper = np.round(255.0 * (1.0 - ink)).astype(np.uint8)
    return Image.fromarray(paper).resize((size, size), Image.Resampling.BICUBIC)


def _split_of(labels: np.ndarray, seed: int) -> list[str]:
    from graft.data.splits import split_indices

    out = np.array(["train"] * len(labels), dtype=object)
    rest, test = split_indices(len(labels), labels, SPLIT_FRACTION, seed)
    out[test] = "test"
    _, val = split_indices(len(rest), labels[rest], SPLIT_FRACTION / (1 - SPLIT_FRACTION), seed + 1)
    out[rest[val]] = "val"
    return [str(s) for s in out]


def _ready(root: Path, params: dict[str, object]) -> bool:
    try:
        return bool(json.loads((root / MARKER).read_text()) == params)
    except (OSError, ValueError):
        return False


def write_digits(
    root: str | Path,
    *,
    per_class: int | None = None,
    seed: int = 0,
    image_size: int = 32,
    splits: bool = False,
    test: bool = False,
) -> Path:
    """Write the digits as PNGs in ``root/<digit>/img_XXXX.png`` and return ``root``.

    Idempotent: a folder already written with the same arguments is reused; the images are
    written to a temporary folder and renamed into place, so a crash never leaves half a dataset.

    Args:
        root: folder to create (must be absent, or written earlier by this function).
        per_class: a random subset of this many images per digit (all 1,797 when None).
        seed: picks the subset and the splits.
        image_size: side of the square images in pixels.
        splits: write ``root/{train,val,test}/<digit>/`` (70/15/15, stratified) instead.
        test: with ``per_class``, write the subset to ``root/train/<digit>/`` and every other
            digit to ``root/test/<digit>/`` (graft carves validation out of train): few labels
            scored on many images, the layout of :func:`graft.data.fashion_mnist.write_fashion_mnist`.
    """
    root = Path(root)
    params: dict[str, object] = {
        "format": FORMAT,
        "per_class": per_class,
        "seed": seed,
        "image_size": image_size,
        "splits": splits,
    }
    if test:
        if per_class is None or splits:
            raise ValueError("test=True needs per_class and no splits")
        params["test"] = True
    if _ready(root, params):
        return root
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise DataError(f"{root}: exists and was not written by write_digits; pick another folder")
    index, images, labels = _digit_images(per_class, seed)
    parts = _split_of(labels, seed) if splits else [""] * len(labels)
    if test:
        chosen = set(index.tolist())
        index, images, labels = _digit_images(None, seed)
        parts = ["train" if i in chosen else "test" for i in index.tolist()]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    follow_umask(tmp, directory=True)  # mkdtemp makes it 0700: others could not read the data
    try:
        for i, image, label, part in zip(index, images, labels, parts, strict=True):
            folder = tmp / part / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            _render(image, image_size).save(folder / f"img_{i:04d}.png")  # type: ignore[attr-defined]
        (tmp / MARKER).write_text(json.dumps(params))
        _install(tmp, root, params)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _install(tmp: Path, root: Path, params: dict[str, object]) -> None:
    """Move ``tmp`` to ``root``; a concurrent writer of the same data may have won the race."""
    if root.exists():
        if _ready(root, params):
            return
        shutil.rmtree(root)  # our own marker, other params: rewrite
    try:
        os.replace(tmp, root)
    except OSError:
        if not _ready(root, params):
            raise


def write_digits_table(
    root: str | Path,
    *,
    per_class: int | None = None,
    seed: int = 0,
    image_size: int = 32,
    regression: bool = False,
    name: str = "digits.csv",
) -> Path:
    """Write the digits and a table describing them; return the table's path.

    Images go to ``root/images/<digit>/``; the table ``root/<name>`` (``.csv``, ``.tsv`` or
    ``.parquet``) has ``path`` relative to ``root`` and ``label`` (the digit, an integer), or
    with ``regression`` the numeric targets ``value`` (the digit as a float) and ``ink`` (the
    share of the 8x8 scan covered in ink, 0..1).
    """
    import pandas as pd

    root = Path(root)
    images = write_digits(root / "images", per_class=per_class, seed=seed, image_size=image_size)
    index, scans, labels = _digit_images(per_class, seed)
    paths = [f"images/{c}/img_{i:04d}.png" for i, c in zip(index, labels, strict=True)]
    assert all((images.parent / p).is_file() for p in paths[:1])
    if regression:
        df = pd.DataFrame(
            {"path": paths, "value": labels.astype(np.float64), "ink": scans.mean(axis=(1, 2)) / 16}
        )
    else:
        df = pd.DataFrame({"path": paths, "label": labels})
    table = root / name
    suffix = table.suffix.lower()
    tmp = table.with_name(f".{table.name}.tmp-{os.getpid()}")
    if suffix in (".parquet", ".pq"):
        df.to_parquet(tmp, index=False)
    elif suffix in (".csv", ".tsv"):
        df.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise ValueError(f"name must end in .csv, .tsv or .parquet, got {name!r}")
    os.replace(tmp, table)
    return table
