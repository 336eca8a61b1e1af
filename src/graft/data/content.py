"""Same content, one split: group items by their bytes, then resolve the copies.

A file's bytes are read only when another file has exactly its size (``os.stat`` first, then a
BLAKE2b hash of just those files), so a folder of photos, whose sizes rarely collide, is
grouped from its directory entries alone. Texts are grouped by their text.

:func:`resolve_copies` then decides, for each group of identical items:

* the same item twice (same label or targets, same given split): a duplicate row, dropped;
* copies in given splits that differ (``train/`` and ``test/`` folders, a ``split`` column):
  the copy in the earlier split (train, then val, then test) is kept and the later ones are
  dropped, unless the caller keeps them (``keep_copies``), in which case they are reported;
* copies under different labels: kept, with a warning naming the files.

Whatever stays is split by group (:func:`graft.data.splits.make_splits`), so identical items
never land in two carved splits.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graft.errors import listing

_SPLIT_ORDER = {None: 0, "train": 0, "val": 1, "test": 2}


def _digest(path: Path) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            if len(chunk) < _CHUNK:
                break
    return h.digest()


_CHUNK = 1 << 20
#: Above this many bytes to hash, threads overlap the reads; below, a plain loop is faster
#: (70,000 Fashion-MNIST PNGs: threads tripled the time, the work is per-file overhead).
_THREADED_BYTES = 256 << 20


def content_groups(
    paths: Sequence[Path], texts: Sequence[str] | None = None, workers: int = 4
) -> np.ndarray:
    """A group id per item; items with identical content share it (the index of the first).

    Args:
        paths: the files (read only where another file has the same size).
        texts: text items: grouped by their text instead of ``paths``.
        workers: threads hashing files when there are many bytes to read.

    Shape:
        - Output: ``(len(paths),)`` int64.
    """
    keys: list[object]
    if texts is not None:
        keys = list(texts)
    else:
        sizes = [os.stat(p).st_size for p in paths]
        count = Counter(sizes)
        need = [i for i, s in enumerate(sizes) if count[s] > 1]
        keys = list(range(len(paths)))  # a size of its own: a group of its own
        files = [paths[i] for i in need]
        if sum(sizes[i] for i in need) > _THREADED_BYTES:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                digests = list(pool.map(_digest, files))
        else:
            digests = [_digest(p) for p in files]
        for i, d in zip(need, digests, strict=True):
            keys[i] = (sizes[i], d)
    first: dict[object, int] = {}
    return np.array([first.setdefault(k, i) for i, k in enumerate(keys)], dtype=np.int64)


@dataclass
class Copies:
    """What :func:`resolve_copies` did: the rows kept, those dropped, and counts to report."""

    keep: list[int]
    dropped: list[tuple[int, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def resolve_copies(
    paths: Sequence[Path],
    groups: np.ndarray,
    targets: Sequence[str],
    splits: Sequence[str | None],
    *,
    keep_copies: bool = False,
) -> Copies:
    """Decide what happens to each set of identical items (see the module's notes).

    Args:
        paths: each row's file (or name, for texts), for the messages.
        groups: :func:`content_groups` of the rows.
        targets: each row's label or targets as text (rows that differ here are not duplicates).
        splits: each row's given split (None: carved later from the training pool).
        keep_copies: keep copies of training items in given val/test splits (reported only).

    Returns:
        :class:`Copies` with counts ``duplicate_rows``, ``split_copies`` (dropped, or kept with
        ``keep_copies``), ``kept_together`` (rows that share their content with another kept
        row: they go to one split) and ``label_conflicts`` (rows whose identical copies carry
        another label).
    """
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups.tolist()):
        members.setdefault(g, []).append(i)
    dropped: dict[int, str] = {}
    counts = Counter[str]()
    conflicts: list[list[int]] = []
    for rows in members.values():
        if len(rows) == 1:
            continue
        seen: dict[tuple[str, str | None], int] = {}
        for i in rows:  # the same item twice: a duplicate row
            first = seen.setdefault((targets[i], splits[i]), i)
            if first != i:
                same = (
                    "the same file"
                    if paths[first] == paths[i]
                    else f"the same bytes as {paths[first]}"
                )
                dropped[i] = f"duplicate row ({same}); kept its first row only"
                counts["duplicate_rows"] += 1
        rest = [i for i in rows if i not in dropped]
        earliest = min(_SPLIT_ORDER[splits[i]] for i in rest)
        home = next(i for i in rest if _SPLIT_ORDER[splits[i]] == earliest)
        later = [i for i in rest if _SPLIT_ORDER[splits[i]] > earliest]
        for i in later:  # a copy in a later given split: it would test on training items
            counts["split_copies"] += 1
            if not keep_copies:
                where = splits[home] or "the training pool"
                same = (
                    "also listed" if paths[home] == paths[i] else f"the same bytes as {paths[home]}"
                )
                dropped[i] = (
                    f"{same} ({where}); dropped from {splits[i]} (pass --keep-duplicates to keep it)"
                )
        together = [i for i in rest if i not in later]  # the same split (or the pool)
        if len({targets[i] for i in rest}) > 1:
            conflicts.append(rest)
        counts["kept_together"] += len(together) if len(together) > 1 else 0
    counts["label_conflicts"] = sum(len(rows) for rows in conflicts)
    _warn(paths, targets, dropped, counts, conflicts, keep_copies)
    keep = [i for i in range(len(paths)) if i not in dropped]
    return Copies(keep, sorted(dropped.items()), {k: v for k, v in counts.items() if v})


def _warn(
    paths: Sequence[Path],
    targets: Sequence[str],
    dropped: dict[int, str],
    counts: Counter[str],
    conflicts: list[list[int]],
    keep_copies: bool,
) -> None:
    if counts["duplicate_rows"]:
        warnings.warn(
            f"{counts['duplicate_rows']} duplicate rows dropped (a file listed twice, or the "
            f"same image under two names){_example(paths, dropped, 'duplicate row')}; each file "
            "now lands in one split only",
            stacklevel=4,
        )
    if counts["split_copies"]:
        done = "kept (--keep-duplicates)" if keep_copies else "dropped from val/test"
        warnings.warn(
            f"{counts['split_copies']} val/test files are copies of files in an earlier split "
            f"and were {done}{_example(paths, dropped, 'dropped from')}",
            stacklevel=4,
        )
    if conflicts:
        groups = [", ".join(f"{paths[i]} ({targets[i]})" for i in rows) for rows in conflicts]
        warnings.warn(
            f"{counts['label_conflicts']} identical images carry different labels (those kept "
            f"stay in one split); check their labels:{listing(groups)}",
            stacklevel=4,
        )


def _example(paths: Sequence[Path], dropped: dict[int, str], kind: str) -> str:
    hit = next(
        (i for i, why in sorted(dropped.items()) if why.startswith(kind) or kind in why), None
    )
    return "" if hit is None else f", e.g. {paths[hit]}: {dropped[hit].split(';')[0]}"
