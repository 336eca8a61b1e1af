"""Unlabeled images: a folder (with or without class folders) or a table of paths.

Domain adaptation and self-supervised pre-training read target images without their labels.
Class folders, a label column or a split column may be present; they are never read: only the
image paths are kept, so a target set with labels and the same set without give the same result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graft.data.base import Samples
from graft.data.images import IMAGE_EXTENSIONS, list_images
from graft.data.images import verify_images as check_images
from graft.data.tables import PATH_COLUMNS, TABLE_EXTENSIONS, find_column, read_table
from graft.errors import DataError


def load_unlabeled(
    source: str | Path,
    *,
    path_column: str | None = None,
    strict: bool = False,
    verify_images: bool = True,
) -> list[Path]:
    """The image files of an unlabeled source, sorted (folders) or in table order.

    Args:
        source: a folder (every image below it, at any depth; hidden entries skipped) or a
            CSV/TSV/Parquet table with a path column (paths relative to the table's folder).
        path_column: the table's path column (default: path, file, filename, image, filepath).
        strict: raise at an unreadable image instead of skipping it with a warning.
        verify_images: check that every image decodes (once).

    Raises:
        DataError: a missing source, a table without a path column or with missing files, or
            no usable images.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"{path}: no such file or folder; pass a folder of target images or a table of paths"
        )
    if path.is_dir():
        paths = list_images(path)
    elif path.suffix.lower() in TABLE_EXTENSIONS:
        paths = _table_paths(path, path_column)
    else:
        raise DataError(
            f"{path}: not a folder or a table; pass a folder of images or a file ending in "
            f"{', '.join(sorted(TABLE_EXTENSIONS))}"
        )
    if not paths:
        raise DataError(
            f"{path}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "put the unlabeled target images in it, in any sub-folders"
        )
    skipped = {p for p, _ in check_images(paths, strict=strict)} if verify_images else set()
    usable = [p for p in paths if p not in skipped]
    if not usable:
        raise DataError(f"{path}: no usable images (all {len(skipped)} were unreadable)")
    return usable


def unlabeled_samples(paths: list[Path]) -> Samples:
    """``paths`` as :class:`Samples` with placeholder targets (all 0, never a label)."""
    return Samples(list(paths), np.zeros(len(paths), dtype=np.int64))


def _table_paths(table: Path, path_column: str | None) -> list[Path]:
    from graft.data.tables import _default_column, _paths

    df = read_table(table)
    column = path_column or _default_column(df, PATH_COLUMNS)
    if column is None:
        cols = ", ".join(str(c) for c in df.columns)
        raise DataError(
            f"{table}: no path column ({', '.join(PATH_COLUMNS)}); "
            f"pass the path column's name. Available columns: {cols}"
        )
    return _paths(df, find_column(df, column, table, "path_column"), table)
