"""Fashion-MNIST as an image folder, offline, from Debian's ``dataset-fashion-mnist`` package.

Xiao, Rasul & Vollgraf (2017): 70,000 28x28 grey photos of Zalando products in 10 classes
(60,000 for training, 10,000 for testing), stored as four gzipped idx files. Debian installs them
under ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
:func:`write_fashion_mnist` writes a seeded ``per_class`` subset of the training images and a fixed
stratified subset of the official test set as ``root/{train,test}/<class>/*.png``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from graft.errors import DataError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
MARKER = ".graft-fashion-mnist.json"
FORMAT = 1
#: Folder names of the 10 classes, in label order (0 = T-shirt/top ... 9 = ankle boot).
CLASSES = (
    "tshirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
#: The test subset does not depend on ``seed``: every seed is scored on the same images.
TEST_SEED = 0


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """One idx file (big-endian header: magic, then one int32 per dimension) as uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    head = np.frombuffer(raw[:4], dtype=">i4")[0]
    if head != magic:
        raise DataError(
            f"{path}: not an idx file of the expected kind (magic {head}, want {magic})"
        )
    ndim = magic & 0xFF
    shape = tuple(int(d) for d in np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">i4"))
    data = np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: holds {data.size} bytes of data, its header says {shape}")
    return data.reshape(shape)


def read_fashion_mnist(
    part: str = "train", source: str | Path = DEFAULT_DIR
) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) of the ``train`` or ``test`` part.

    Raises:
        DataError: the files are missing (install ``dataset-fashion-mnist``) or malformed.
    """
    if part not in FILES:
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    source = Path(source)
    images_name, labels_name = FILES[part]
    missing = [n for n in FILES[part] if not (source / n).is_file()]
    if missing:
        raise DataError(
            f"Fashion-MNIST not found: {source} lacks {', '.join(missing)}. Install Debian's "
            "package (sudo apt-get install dataset-fashion-mnist), or pass source=DIR holding "
            "the four idx .gz files of github.com/zalandoresearch/fashion-mnist"
        )
    images = _read_idx(source / images_name, 2051)
    labels = _read_idx(source / labels_name, 2049)
    if len(images) != len(labels):
        raise DataError(f"{source}: {len(images)} {part} images but {len(labels)} labels")
    return images, labels


def _stratified(labels: np.ndarray, per_class: int, seed: int, what: str) -> np.ndarray:
    """Sorted indices of ``per_class`` random examples of every class."""
    if per_class < 1:
        raise ValueError(f"{what} must be at least 1 per class, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(len(CLASSES)):
        members = np.flatnonzero(labels == c)
        if per_class > len(members):
            raise ValueError(f"{what}={per_class}: class {CLASSES[c]} has {len(members)} images")
        chosen.append(np.sort(rng.choice(members, per_class, replace=False)))
    return np.concatenate(chosen)


def write_fashion_mnist(
    root: str | Path,
    *,
    per_class: int = 50,
    seed: int = 0,
    test: int | None = 2000,
    source: str | Path = DEFAULT_DIR,
) -> Path:
    """Write Fashion-MNIST as PNG class folders and return ``root``.

    With ``test`` the layout is ``root/train/<class>/`` plus ``root/test/<class>/`` (graft carves
    validation out of train); with ``test=None`` it is ``root/<class>/`` (train images only).
    Idempotent and atomic like :func:`graft.data.digits.write_digits`.

    Args:
        root: folder to create (absent, or written earlier by this function).
        per_class: training images per class, a random subset picked by ``seed``.
        seed: picks the training subset.
        test: images of the official test set, stratified (a multiple of 10; 10000 = all of it);
            the subset is fixed (independent of ``seed``). None: no test folder.
        source: folder of the four idx ``.gz`` files.
    """
    root = Path(root)
    params: dict[str, object] = {"format": FORMAT, "per_class": per_class, "seed": seed}
    params |= {"test": test, "source": str(Path(source).resolve())}
    if _ready(root, params):
        return root
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise DataError(f"{root}: exists and was not written by write_fashion_mnist; pick another")
    if test is not None and (test < 10 or test % len(CLASSES)):
        raise ValueError(f"test must be a positive multiple of 10 (or None), got {test}")
    parts = _pick(per_class, seed, test, Path(source))
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for part, (images, labels, index) in parts.items():
            _write_part(tmp / part, images, labels, index)
        (tmp / MARKER).write_text(json.dumps(params))
        _install(tmp, root, params)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _ready(root: Path, params: dict[str, object]) -> bool:
    try:
        return bool(json.loads((root / MARKER).read_text()) == params)
    except (OSError, ValueError):
        return False


def _install(tmp: Path, root: Path, params: dict[str, object]) -> None:
    """Move ``tmp`` to ``root``; a concurrent writer of the same data may have won the race."""
    if root.exists():
        if _ready(root, params):
            return
        shutil.rmtree(root)  # our own marker (checked by the caller), other params: rewrite
    try:
        os.replace(tmp, root)
    except OSError:
        if not _ready(root, params):
            raise


def _pick(
    per_class: int, seed: int, test: int | None, source: Path
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{folder part: (images, labels, original indices)} to write ('' is the class layout)."""
    images, labels = read_fashion_mnist("train", source)
    train = _stratified(labels, per_class, seed, "per_class")
    if test is None:
        return {"": (images[train], labels[train], train)}
    out = {"train": (images[train], labels[train], train)}
    t_images, t_labels = read_fashion_mnist("test", source)
    chosen = _stratified(t_labels, test // len(CLASSES), TEST_SEED, "test/10")
    out["test"] = (t_images[chosen], t_labels[chosen], chosen)
    return out


def _write_part(folder: Path, images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> None:
    from PIL import Image

    for c in CLASSES:
        (folder / c).mkdir(parents=True, exist_ok=True)
    for image, label, i in zip(images, labels, index, strict=True):
        Image.fromarray(image, mode="L").save(folder / CLASSES[label] / f"img_{i:05d}.png")
