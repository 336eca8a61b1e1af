"""Image folders: ``root/<class>/*`` or ``root/{train,val,test}/<class>/*``, and image checks.

Class folders may hold nested folders; every file with an image extension below a class folder
belongs to that class. Hidden files and folders (``.``-prefixed, ``__MACOSX``) are ignored.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from graft.errors import DataError, listing

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

#: Folder names that mark a split, and the split each one means.
SPLIT_NAMES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


def is_image_file(path: Path) -> bool:
    """True for a visible file whose extension (any case) is an image format."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def typical_side(paths: list[Path], sample: int = 16) -> int | None:
    """The median short side in pixels of the first ``sample`` readable images (None: none).

    Reads only the headers (PIL opens lazily), so it costs milliseconds: the advisor's input-size
    search and ``graft compare``'s small CNN size read the data's own size from it.
    """
    from PIL import Image

    sides = []
    for path in paths[:sample]:
        try:
            with Image.open(path) as im:
                sides.append(min(im.size))
        except OSError:
            continue
    if not sides:
        return None
    return sorted(sides)[len(sides) // 2]


def small_network_side(paths: list[Path], sample: int = 16) -> int:
    """The input side of a small network trained from scratch on these images: their typical
    side (:func:`typical_side`) within 32..128 px (``graft compare``'s ``small_cnn``, auto's race)."""
    side = typical_side(paths, sample)
    return 32 if side is None else int(min(128, max(32, side)))


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursively), sorted, skipping hidden entries."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        out += [Path(dirpath, f) for f in filenames if is_image_file(Path(f))]
    return sorted(out)


def subfolders(folder: Path) -> list[Path]:
    """The visible subfolders; a link back to ``folder`` or above it is left out, with a warning
    (it would read every class again as one new class)."""
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))
    here = folder.resolve()
    loops = [p for p in found if p.resolve() == here or p.resolve() in here.parents]
    if loops:
        warnings.warn(
            f"{folder}: {', '.join(p.name for p in loops)} links back to this folder or above it "
            "and was not read as a class",
            stacklevel=3,
        )
    return [p for p in found if p not in loops]


def split_folders(root: Path) -> dict[str, Path] | None:
    """The split folders of ``root`` (``train``, ``val``, ``test``), or None for a class layout.

    A folder is in split layout when it has a ``train`` folder and every other folder is a
    split name. Mixing split and class folders is ambiguous and raises :class:`DataError`.
    """
    dirs = subfolders(root)
    named = {d.name.lower(): d for d in dirs}
    if "train" not in named:
        return None
    others = [d.name for d in dirs if d.name.lower() not in SPLIT_NAMES]
    if others:
        raise DataError(
            f"{root}: has a train/ folder but also {others[:5]}; put class folders either "
            "directly in it or inside train/, val/ and test/"
        )
    splits: dict[str, Path] = {}
    for name, d in named.items():
        split = SPLIT_NAMES[name]
        if split in splits:
            raise DataError(f"{root}: both {splits[split].name}/ and {d.name}/ are a {split} split")
        splits[split] = d
    return splits


def scan_classes(root: Path) -> dict[str, list[Path]]:
    """Class name -> image files for one ``<class>/*`` folder; empty classes warn and drop."""
    classes: dict[str, list[Path]] = {}
    empty: list[str] = []
    for d in subfolders(root):
        files = list_images(d)
        if files:
            classes[d.name] = files
        else:
            empty.append(d.name)
    if empty:
        warnings.warn(
            f"{root}: class folders with no images were skipped: {', '.join(empty)} "
            f"(image extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})",
            stacklevel=3,
        )
    loose = [p for p in root.iterdir() if p.is_file() and is_image_file(p)]
    if loose and classes:
        warnings.warn(
            f"{root}: {len(loose)} images directly in the folder (e.g. {loose[0].name}) belong "
            "to no class and were ignored; move them into a class folder",
            stacklevel=3,
        )
    return classes


def _ends_with_eoi(path: Path) -> bool:
    """True if a JPEG file ends with its end-of-image marker (a truncated file does not)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64))
        return f.read().rstrip(b"\x00").endswith(b"\xff\xd9")


def too_large(im: Any) -> str | None:
    """Why an opened image is refused for its size, or None.

    PIL refuses more than twice ``Image.MAX_IMAGE_PIXELS`` (a likely decompression bomb) and only
    warns between one and two times; graft refuses that range too, before any pixel is read.
    """
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is None or im.width * im.height <= limit:
        return None
    return (
        f"too large ({im.width}x{im.height} = {im.width * im.height:,} pixels, above PIL's "
        f"limit of {limit:,}: a possible decompression bomb); resize it, or raise "
        "PIL.Image.MAX_IMAGE_PIXELS if you trust it"
    )


def check_image(path: Path, *, decode: bool = True) -> str | None:
    """Why ``path`` cannot be used as an image, or None if it looks whole.

    Every file's header is parsed, and an image above PIL's pixel limit is refused
    (:func:`too_large`). PIL's ``verify`` then checks structure (and PNG checksums). A JPEG that
    ends with its end-of-image marker is accepted as is (so a folder of 12-megapixel photos
    checks in a blink); one that does not, e.g. a truncated download or a camera that appends
    data, gets a reduced-size ``draft`` decode to decide.

    Args:
        path: the file.
        decode: also decode every file other than a JPEG once: a PNG with valid checksums can
            still hold too few pixels, which only a decode finds. ``load`` passes False: in
            training such a file is skipped where it is read (:class:`~graft.data.ImageDataset`,
            the feature-extraction pass), which saves a decode of every image at load.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            big = too_large(im)
            if big:
                return big
            if im.format != "JPEG":
                im.verify()
            elif not _ends_with_eoi(path):
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
        if decode and im.format != "JPEG":  # checksums can be right over a short pixel stream
            with Image.open(path) as again:
                again.load()
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return f"not a readable image ({type(e).__name__}: {e})"
    return None


def verify_images(
    paths: list[Path], *, strict: bool, workers: int = 4, decode: bool = True
) -> list[tuple[Path, str]]:
    """Check every image once; return the bad ones as ``(path, reason)``.

    Args:
        paths: files to check.
        strict: raise :class:`DataError` at the first bad file instead of returning it.
        workers: threads; PIL releases the GIL while reading and decoding.
        decode: decode every non-JPEG file once (see :func:`check_image`).
    """
    if not paths:
        return []
    check = partial(check_image, decode=decode)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths) // 64 + 1))) as pool:
        reasons = list(pool.map(check, paths))
    bad = [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]
    if bad and strict:
        p, r = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"{p}: {r}{more}; remove or replace it, or drop --strict to skip it")
    if bad:
        warnings.warn(
            f"{len(bad)} unreadable images were skipped (pass --strict to stop instead):"
            + listing([f"{p}: {r}" for p, r in bad]),
            stacklevel=3,
        )
    return bad


def read_folder(root: Path) -> tuple[list[Path], list[str], list[str | None]]:
    """Every image below ``root`` with its class name and split (None when not given).

    Raises:
        DataError: no images, or a class that appears only in val/ or test/.
    """
    layout = split_folders(root)
    parts = layout if layout is not None else {None: root}
    paths: list[Path] = []
    labels: list[str] = []
    splits: list[str | None] = []
    for split, folder in parts.items():
        for name, files in scan_classes(folder).items():
            paths += files
            labels += [name] * len(files)
            splits += [split] * len(files)
    if not paths:
        if any(is_image_file(p) for p in root.iterdir()):
            raise DataError(
                f"{root}: images but no class folders; put each class's images in a folder "
                f"named after the class, e.g. {root}/cats/1.jpg (or pass a CSV table)"
            )
        where = f" in {', '.join(str(p) for p in parts.values())}" if layout else ""
        raise DataError(
            f"{root}: no images found{where}; expected class folders holding image files "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}), e.g. {root}/cats/1.jpg"
        )
    return paths, labels, splits
