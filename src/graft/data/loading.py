"""``load``: a folder or a table into a :class:`Dataset` with train/val/test splits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from graft.config import SPLIT_FRACTION
from graft.data.base import Dataset, Samples, Task
from graft.data.content import content_groups, resolve_copies
from graft.data.images import read_folder
from graft.data.images import verify_images as check_images
from graft.data.splits import check_fractions, make_splits
from graft.data.tables import TABLE_EXTENSIONS, Rows, read_rows
from graft.data.text import blank_rows, is_text_folder, read_text_folder, warn_skipped
from graft.errors import ConfigError, DataError


def load(
    source: str | Path | Dataset,
    *,
    task: str | None = None,
    path_column: str | None = None,
    label_column: str | None = None,
    target_columns: list[str] | None = None,
    val_fraction: float = SPLIT_FRACTION,
    test_fraction: float = SPLIT_FRACTION,
    seed: int = 0,
    strict: bool = False,
    verify_images: bool = True,
    label_separator: str | None = None,
    text_column: str | None = None,
    keep_duplicates: bool = False,
) -> Dataset:
    """Load an image folder or a CSV/TSV/Parquet table into train/val/test splits.

    A folder holds ``<class>/`` folders of images, optionally inside ``train/``, ``val/`` (or
    ``valid/``, ``validation/``) and ``test/``. A table has a path column (paths relative to the
    table's folder), a label column or numeric target columns, and optionally a ``split`` column.
    Splits that are not given are carved out of the training data: stratified by class for
    classification, shuffled for regression, the same for the same ``seed``.

    Args:
        source: the folder or table (an already-built Dataset passes through unchanged).
        task: ``classification``, ``regression``, ``multilabel`` or ``multitask``; inferred
            when None (folders classify; see :mod:`graft.data.tables` for tables, and
            :mod:`graft.data.multi` for multi-label and multi-task tables).
        path_column: table column with image paths (default: path, file, filename, image,
            filepath).
        label_column: table column with class labels (default: label, class, target).
        target_columns: table columns with regression targets (default: the numeric columns);
            multitask: ``NAME`` or ``NAME:KIND`` per task (default: every other column).
        val_fraction: share of the data for validation when no val split is given.
        test_fraction: share for testing when no test split is given (0 → ``test`` is None).
        seed: random seed of the split.
        strict: raise at an unreadable image instead of skipping it with a warning.
        verify_images: check every image's header, size and checksums at load (files that
            pass but fail to decode are skipped, and listed, where training reads them).
        label_separator: multi-label tables: separator of the labels in a cell (default ``;``);
            given with ``task`` None, the table is read as multi-label.
        text_column: a table column holding texts: the dataset is text (``input_kind="text"``).
            A folder whose class folders hold ``.txt`` files (and no images) is text too.
        keep_duplicates: keep val/test files whose bytes are also in an earlier given split
            (dropped by default, and listed in ``Dataset.skipped``). Identical files are always
            kept in one split when the splits are carved here; ``Dataset.duplicates`` counts
            what was found.

    Returns:
        The :class:`Dataset`; skipped files are listed in ``Dataset.skipped``.

    Raises:
        DataError: a missing source, missing or unreadable files (with ``strict``), bad rows,
            fewer than two classes, or no images at all.
    """
    if isinstance(source, Dataset):
        return source
    check_fractions(val_fraction, test_fraction)
    path = Path(source).expanduser()
    rows, skipped = _read(
        path, task, path_column, label_column, target_columns, label_separator, text_column, strict
    )
    if rows.texts is None and verify_images:
        # The quick check: headers, sizes, checksums. A file that still fails to decode is
        # skipped where training reads it (graft.training.loaders), not decoded twice here.
        skipped = check_images(rows.paths, strict=strict, decode=False)
    if skipped:
        rows = _without(rows, {p for p, _ in skipped})
    if not rows.paths:
        kind = "texts" if rows.texts is not None else "images"
        raise DataError(f"{path}: no usable {kind} (all {len(skipped)} were skipped)")
    rows, groups, copies, duplicates = _resolve_copies(rows, keep_duplicates)
    skipped += copies
    if rows.task == "classification":
        assert rows.labels is not None
        class_names, y = _encode_classes(rows.labels, rows.splits, str(path))
    else:
        assert rows.targets is not None
        class_names, y = None, rows.targets
    train, val, test = _split(
        Samples(rows.paths, y, rows.texts),
        rows.splits,
        groups,
        rows.task,
        val_fraction,
        test_fraction,
        seed,
        str(path),
        class_names,
    )
    class_names = class_names if rows.class_names is None else rows.class_names
    data = Dataset(rows.task, train, val, test, class_names, rows.target_names, str(path), skipped)
    data.subtasks = rows.subtasks
    data.duplicates, data.keep_duplicates, data.strict = duplicates, keep_duplicates, strict
    data.input_kind = "image" if rows.texts is None else "text"
    if rows.task == "classification":
        _check_train_classes(data)
    return data


def _read(
    path: Path,
    task: str | None,
    path_column: str | None,
    label_column: str | None,
    target_columns: list[str] | None,
    label_separator: str | None = None,
    text_column: str | None = None,
    strict: bool = False,
) -> tuple[Rows, list[tuple[Path, str]]]:
    if not path.exists():
        raise DataError(
            f"{path}: no such file or folder; pass an image folder or a CSV/Parquet table"
        )
    if path.is_dir():
        if task not in (None, "classification") or label_separator is not None:
            raise ConfigError(
                f"{path}: a folder of class folders is a classification dataset (one class per "
                f"image); for task={task or 'multilabel'!r} pass a table with target columns "
                "(regression, multitask) or a label column of labels joined by a separator "
                "(multilabel)"
            )
        if is_text_folder(path):
            files, labels, splits, texts, skipped = read_text_folder(path, strict=strict)
            return Rows("classification", files, labels, None, splits, None, texts=texts), skipped
        files, labels, splits = read_folder(path)
        return Rows("classification", files, labels, None, splits, None), []
    if path.suffix.lower() in TABLE_EXTENSIONS:
        rows = read_rows(
            path,
            task=task,
            path_column=path_column,
            label_column=label_column,
            target_columns=target_columns,
            label_separator=label_separator,
            text_column=text_column,
        )
        skipped = [] if rows.texts is None else blank_rows(rows.texts, rows.paths, strict=strict)
        warn_skipped(skipped, str(path))
        return rows, skipped
    raise DataError(
        f"{path}: not a folder or a table; pass an image folder or a file ending in "
        f"{', '.join(sorted(TABLE_EXTENSIONS))}"
    )


def _resolve_copies(
    rows: Rows, keep_copies: bool
) -> tuple[Rows, np.ndarray, list[tuple[Path, str]], dict[str, int]]:
    """Group rows by content and drop duplicate rows and copies in later splits (see
    :mod:`graft.data.content`). Returns the rows kept, their groups, the drops and the counts."""
    groups = content_groups(rows.paths, rows.texts)
    targets = [
        rows.labels[i] if rows.labels is not None else _target_text(rows, i)
        for i in range(len(rows.paths))
    ]
    copies = resolve_copies(rows.paths, groups, targets, rows.splits, keep_copies=keep_copies)
    dropped = [(rows.paths[i], why) for i, why in copies.dropped]
    return _subset(rows, copies.keep), groups[copies.keep], dropped, copies.counts


def _target_text(rows: Rows, i: int) -> str:
    return "" if rows.targets is None else repr(np.asarray(rows.targets[i]).tolist())


def _without(rows: Rows, bad: set[Path]) -> Rows:
    return _subset(rows, [i for i, p in enumerate(rows.paths) if p not in bad])


def _subset(rows: Rows, keep: list[int]) -> Rows:
    return replace(
        rows,
        paths=[rows.paths[i] for i in keep],
        labels=None if rows.labels is None else [rows.labels[i] for i in keep],
        targets=None if rows.targets is None else rows.targets[keep],
        splits=[rows.splits[i] for i in keep],
        texts=None if rows.texts is None else [rows.texts[i] for i in keep],
    )


def _class_sort_key(names: list[str]) -> list[str]:
    """Sorted class names; all-numeric names sort by value (2 before 10)."""
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def _encode_classes(
    labels: list[str], splits: list[str | None], source: str
) -> tuple[list[str], np.ndarray]:
    names = _class_sort_key(sorted(set(labels)))
    in_train = {lab for lab, s in zip(labels, splits, strict=True) if s in (None, "train")}
    only_eval = [n for n in names if n not in in_train]
    if only_eval:
        raise DataError(
            f"{source}: classes {only_eval} appear only in val/test, never in train; "
            "add training images for them or remove them"
        )
    if len(names) < 2:
        found = f"only {names[0]!r}" if names else "none"
        raise DataError(
            f"need at least 2 classes; found {found} in {source}; add a folder (or label) per class"
        )
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[lab] for lab in labels], dtype=np.int64)


def _split(
    samples: Samples,
    splits: list[str | None],
    groups: np.ndarray,
    task: Task,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    source: str,
    class_names: list[str] | None,
) -> tuple[Samples, Samples, Samples | None]:
    given = {s for s in splits if s is not None}
    if given and "train" not in given:
        raise DataError(f"{source}: a {sorted(given)} split is given but no train split")
    pick = np.array([s or "train" for s in splits])
    where = {name: np.flatnonzero(pick == name) for name in ("train", "val", "test")}
    part = {name: samples.subset(index) for name, index in where.items()}
    train, val, test = make_splits(
        part["train"],
        groups=groups[where["train"]],
        stratify=task == "classification",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        need_val="val" not in given,
        need_test="test" not in given,
        seed=seed,
        class_names=class_names,
    )
    val = part["val"] if val is None else val
    if test is None:
        test = part["test"] if "test" in given else None
    elif len(test) == 0:
        test = None
    if len(train) == 0:
        raise DataError(f"{source}: no images left for training; lower val/test fractions")
    return train, val, test


def _check_train_classes(data: Dataset) -> None:
    assert data.class_names is not None
    counts = np.bincount(data.train.targets, minlength=len(data.class_names))
    missing = [n for n, c in zip(data.class_names, counts, strict=True) if c == 0]
    if missing:
        raise DataError(
            f"{data.source}: classes {missing} have no training images after the split; "
            "add images or lower val_fraction/test_fraction"
        )
