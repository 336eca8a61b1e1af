"""FeatureStore: a frozen backbone's output for each file, computed once and kept on disk.

Layout under the store root (``$GRAFT_CACHE_DIR/features`` or ``~/.cache/graft/features``)::

    <backbone identity>-<transform hash>/
        meta.json                 backbone spec, transform id, dim, graft version
        shard-<hash>.npy          float32 (rows, dim)
        shard-<hash>.json         the content key (sha256 of the file's bytes) of each row and
                                  the CRC-32 of the rows, verified once per process before use

A shard counts only once its ``.json`` exists; both files are written under a unique temporary
name and renamed into place, ``.npy`` first. A crash or a second process writing the same entry
can therefore leave an unused ``.npy`` (ignored, cleaned later) but never a wrong row; a shard whose
bytes changed later (same size, e.g. overwritten with NaN) fails its checksum and its rows are
computed again. A read-only store serves every entry it holds; a read-only or full store that
must grow stops with one line saying what to do. Shard
names hash their keys rather than count up, so two processes never claim the same name for
different rows.

Example::

    store = FeatureStore()
    feats = store.extract(backbone, paths, load=load_one, transform_id="resize224-imagenet")
    X = feats.to_array()          # (len(paths), backbone.num_features)
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from graft import __version__
from graft.backbones.base import Backbone
from graft.backbones.engines import choose_engine
from graft.errors import ConfigError, DataError
from graft.io import atomic_write_text, cache_root, follow_umask
from graft.progress import Heartbeat

Loader = Callable[[Any], torch.Tensor]  # a file path, or an item of ``keys``-given extraction

# An orphan .npy (no .json) older than this was left by a crash: the rename gap is microseconds.
_ORPHAN_AGE_S = 60.0
# A temporary file older than this belongs to no live writer.
_TMP_AGE_S = 3600.0
_MEMO_LIMIT = 1 << 20
# (device, inode, size, mtime, ctime) -> sha256: repeated calls in one process skip re-hashing.
_KEY_MEMO: dict[tuple[int, ...], str] = {}
# The errors of a store that cannot be written: read-only, not ours, or full.
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def default_root() -> Path:
    """``$GRAFT_CACHE_DIR/features``, else ``$XDG_CACHE_HOME/graft/features`` or ``~/.cache/...``."""
    return cache_root() / "features"


def store_root(cache_dir: str | Path | None) -> Path:
    """The store folder for ``--cache-dir`` (``cache_dir``): ``DIR/features``, as for the env var.

    ``--cache-dir DIR`` and ``GRAFT_CACHE_DIR=DIR`` name the same store; None: :func:`default_root`.
    """
    return Path(cache_dir).expanduser() / "features" if cache_dir else default_root()


#: The file that marks a folder as graft's feature store (written when the store is created);
#: ``clear`` deletes nothing in a folder without it.
MARKER = ".graft-feature-store"
_ENTRY_NAME = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{16}$")


def content_key(path: str | Path) -> str:
    """The sha256 of a file's bytes (memoised per process on inode, size and timestamps).

    Raises:
        DataError: the file is missing or unreadable.
    """
    try:
        st = os.stat(path)
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if stamp in _KEY_MEMO:
            return _KEY_MEMO[stamp]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}); check the path") from None
    if len(_KEY_MEMO) >= _MEMO_LIMIT:
        _KEY_MEMO.clear()
    _KEY_MEMO[stamp] = key = h.hexdigest()
    return key


def content_keys(paths: Sequence[Path]) -> list[str]:
    """:func:`content_key` for many files; threads overlap the reads (hashlib drops the GIL)."""
    if len(paths) < 64:
        return [content_key(p) for p in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(content_key, paths, chunksize=64))


class Features:
    """Stored features in the order of the requested paths, read from memory-mapped shards.

    Rows are copied out of the shards only when indexed, so a view over millions of files costs
    two integers per row. ``computed`` and ``reused`` count distinct file contents that ran
    through the backbone in this call and that were already on disk.

    Shape:
        - ``features[i]``: ``(dim,)``; ``features[index_array]``: ``(len(index_array), dim)``.
    """

    def __init__(
        self,
        shards: list[Path],
        shard_index: np.ndarray,
        row_index: np.ndarray,
        dim: int,
        *,
        computed: int = 0,
        reused: int = 0,
    ) -> None:
        self.shards = shards
        self.shard_index = shard_index
        self.row_index = row_index
        self.dim = dim
        self.computed = computed
        self.reused = reused
        #: items left out (``extract(skip_unreadable=True)``): (item, why); no row each
        self.skipped: list[tuple[Any, str]] = []
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.row_index)

    def __getstate__(self) -> dict[str, Any]:  # open maps do not cross to DataLoader workers
        return {**self.__dict__, "_maps": {}}

    def _map(self, s: int) -> np.ndarray:
        if s not in self._maps:
            self._maps[s] = np.load(self.shards[s], mmap_mode="r")
        return self._maps[s]

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            return np.array(self._map(int(self.shard_index[i]))[self.row_index[i]])
        idx = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        shard, row = self.shard_index[idx], self.row_index[idx]
        out = np.empty((len(idx), self.dim), dtype=np.float32)
        order = np.argsort(shard, kind="stable")  # one fancy read per shard
        stems, starts = np.unique(shard[order], return_index=True)
        for s, a, b in zip(stems, starts, [*starts[1:], len(order)], strict=True):
            sel = order[a:b]
            out[sel] = self._map(int(s))[row[sel]]
        return out

    def iter_batches(
        self, batch_size: int, indices: Sequence[int] | np.ndarray | None = None
    ) -> Iterator[np.ndarray]:
        """Yield ``(batch, dim)`` arrays over ``indices`` (default: all rows, in order)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices)
        for start in range(0, len(idx), batch_size):
            yield self[idx[start : start + batch_size]]

    def to_array(self) -> np.ndarray:
        """All rows as one in-memory ``(len, dim)`` float32 array."""
        return self[np.arange(len(self))]


class _Entry:
    """One folder of shards: one backbone (weights included) with one preprocessing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # shard stem -> (stat of its .npy, row keys, CRC-32 or None): parsed once per process
        self._keys: dict[str, tuple[tuple[int, ...], list[str], int | None]] = {}
        self._verified: set[tuple[str, tuple[int, ...]]] = set()  # (stem, stat) checksums passed
        self._bad: set[tuple[str, tuple[int, ...]]] = set()  # damaged, kept by a read-only store

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "meta.json").read_text())
        except (OSError, ValueError):
            return {}

    def ensure_meta(self, meta: dict[str, Any]) -> None:
        file = self.path / "meta.json"
        if not file.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_text(file, json.dumps(meta, indent=1, sort_keys=True))
        with suppress(OSError):  # a read-only store: reading needs no "last used" stamp
            os.utime(file)  # its mtime is the entry's "last used"

    def index(self, dim: int | None = None) -> dict[str, tuple[str, int]]:
        """Content key -> (shard stem, row) over every complete, valid shard."""
        known, self._keys = self._keys, {}
        for stem in sorted(p.stem for p in self.path.glob("shard-*.json")):
            try:
                st = (self.path / f"{stem}.npy").stat()
            except FileNotFoundError:
                continue  # removed by a concurrent clear()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if (stem, stamp) in self._bad:
                continue
            if stem in known and known[stem][0] == stamp:
                self._keys[stem] = known[stem]
            elif (read := self._read_shard(stem, dim)) is not None:
                self._keys[stem] = (stamp, *read)
        out: dict[str, tuple[str, int]] = {}
        for stem, (_, keys, _) in self._keys.items():
            for row, key in enumerate(keys):
                out.setdefault(key, (stem, row))
        return out

    def _read_shard(self, stem: str, dim: int | None) -> tuple[list[str], int | None] | None:
        try:
            listed = json.loads((self.path / f"{stem}.json").read_text())
            # {"keys": [...], "crc32": n}; a bare list is a shard written before checksums.
            keys, crc = (
                (listed, None) if isinstance(listed, list) else (listed["keys"], listed["crc32"])
            )
            arr = np.load(self.path / f"{stem}.npy", mmap_mode="r")
            ok = arr.ndim == 2 and arr.shape[0] == len(keys) and dim in (None, arr.shape[1])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if not ok:  # damaged (e.g. truncated by a power cut): drop it, its rows get recomputed
            self.drop(stem)
            return None
        return list(keys), crc

    def verify(self, stems: set[str]) -> set[str]:
        """Check the rows of ``stems`` against their checksum (once per process and stat).

        Returns the stems that failed; they are removed (or, in a read-only store, ignored from
        now on) so their rows are computed again.
        """
        bad = set()
        for stem in stems:
            stamp, _, crc = self._keys[stem]
            if (stem, stamp) not in self._verified:
                if not _rows_intact(self.path / f"{stem}.npy", crc):
                    bad.add(stem)
                    self._bad.add((stem, stamp))
                    self.drop(stem)
                    continue
                self._verified.add((stem, stamp))
        return bad

    def drop(self, stem: str) -> None:
        """Remove a damaged shard (left in place when the store is read-only)."""
        for suffix in (".json", ".npy"):
            with suppress(OSError):
                (self.path / f"{stem}{suffix}").unlink(missing_ok=True)

    def note_engine(self, name: str) -> None:
        """Record in ``meta.json`` that engine ``name`` computed rows of this entry."""
        meta = self.meta()
        if meta and name not in meta.get("engines", []):
            meta["engines"] = sorted({*meta.get("engines", []), name})
            atomic_write_text(self.path / "meta.json", json.dumps(meta, indent=1, sort_keys=True))

    def write_shard(self, array: np.ndarray, keys: list[str]) -> None:
        stem = "shard-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
        self.path.mkdir(parents=True, exist_ok=True)
        rows = np.ascontiguousarray(array, dtype=np.float32)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".npy.tmp", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, rows)
            follow_umask(tmp)
            os.replace(tmp, self.path / f"{stem}.npy")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        listed = {"keys": keys, "crc32": zlib.crc32(rows.data.cast("B"))}
        atomic_write_text(self.path / f"{stem}.json", json.dumps(listed))

    def clean(self) -> None:
        """Remove orphan ``.npy`` files and temporary files left by crashed writers."""
        now = time.time()
        for p in self.path.iterdir():
            try:
                age = now - p.stat().st_mtime
            except FileNotFoundError:
                continue
            orphan = p.suffix == ".npy" and not p.with_suffix(".json").exists()
            if (orphan and age > _ORPHAN_AGE_S) or (p.name.endswith(".tmp") and age > _TMP_AGE_S):
                p.unlink(missing_ok=True)

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())


class _Files(torch.utils.data.Dataset[Any]):
    def __init__(self, paths: list[Path], load: Loader, skip: bool = False) -> None:
        self.paths, self.load, self.skip = paths, load, skip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        try:
            return self.load(self.paths[i])
        except Exception as e:
            error = e if isinstance(e, DataError) else None
            error = error or DataError(
                f"{self.paths[i]}: cannot load ({type(e).__name__}: {e}); "
                "fix or remove the file (finished feature shards are kept)"
            )
            if self.skip:  # the batch carries it back to the main process (see _skipping)
                return _Unreadable(i, str(error))
            raise error from (None if error is e else e)


# --- Unreadable files, skipped (extract(skip_unreadable=True)): the batch drops them, their
# keys leave the writer's list before their rows would be written, the caller gets them back.
class _Unreadable(NamedTuple):
    position: int
    reason: str


def _collate(items: list[Any]) -> tuple[torch.Tensor | None, list[_Unreadable]]:
    bad = [x for x in items if isinstance(x, _Unreadable)]
    good = [x for x in items if not isinstance(x, _Unreadable)]
    return (torch.utils.data.default_collate(good) if good else None), bad


def _skipping(
    batches: Iterator[Any], writer: _ShardWriter, failed: dict[str, str]
) -> Iterator[torch.Tensor]:
    keys = list(writer.keys)  # item i of the pass is keys[i]
    for batch, bad in batches:
        for item in bad:
            writer.keys.remove(keys[item.position])
            failed[keys[item.position]] = item.reason
        if batch is not None:
            yield batch


# --- end of the skipping of unreadable files


_ENTRIES: dict[Path, _Entry] = {}  # per process, so a shard's key list is parsed once


def _entry(path: Path) -> _Entry:
    return _ENTRIES.setdefault(path, _Entry(path))


class _ShardWriter:
    """Fills one shard-sized buffer and persists it when full: memory stays one shard."""

    def __init__(self, entry: _Entry, keys: list[str], dim: int, shard_size: int) -> None:
        self.entry, self.keys = entry, keys
        self.buf = np.empty((max(1, min(shard_size, len(keys))), dim), dtype=np.float32)
        self.filled = self.done = 0

    def add(self, out: np.ndarray) -> None:
        start = 0
        while start < len(out):
            take = min(len(out) - start, len(self.buf) - self.filled)
            self.buf[self.filled : self.filled + take] = out[start : start + take]
            self.filled += take
            start += take
            if self.filled == len(self.buf):
                self.flush()

    def flush(self) -> None:
        if self.filled:
            keys = self.keys[self.done : self.done + self.filled]
            self.entry.write_shard(self.buf[: self.filled], keys)
            self.done += self.filled
            self.filled = 0


class FeatureStore:
    """Frozen-backbone features on disk, keyed by weights, preprocessing and file content.

    Args:
        root: store folder; default ``$GRAFT_CACHE_DIR/features``, else
            ``~/.cache/graft/features`` (``$XDG_CACHE_HOME`` respected).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = (Path(root).expanduser() if root is not None else default_root()).absolute()

    @classmethod
    def for_cache_dir(cls, cache_dir: str | Path | None) -> FeatureStore:
        """The store ``--cache-dir`` names (``DIR/features``; default as ``GRAFT_CACHE_DIR``)."""
        return cls(store_root(cache_dir))

    def is_store(self) -> bool:
        """True when the root holds graft's marker (it created the folder as its store)."""
        return (self.root / MARKER).is_file()

    def _mark(self) -> None:
        if not self.is_store():
            atomic_write_text(self.root / MARKER, '{"format": "graft-feature-store"}\n')

    def entry_path(self, backbone_identity: str, transform_id: str) -> Path:
        """The folder holding one backbone's features under one preprocessing."""
        transform_hash = hashlib.sha256(transform_id.encode()).hexdigest()[:16]
        return self.root / f"{backbone_identity}-{transform_hash}"

    def extract(
        self,
        backbone: Backbone,
        paths: Sequence[Any],
        *,
        load: Loader,
        transform_id: str,
        batch_size: int = 64,
        num_workers: int = 0,
        shard_size: int = 2048,
        progress: bool = True,
        keys: Sequence[str] | None = None,
        skip_unreadable: bool = False,
        spread: bool = False,
        order: Sequence[float] | None = None,
    ) -> Features:
        """Features of ``paths`` in their order, running the backbone only on files not stored.

        Files are read by content, so a renamed file reuses its features and an edited one gets
        new ones. Shards are persisted as they fill; an interrupted call loses at most one shard
        of work and the next call resumes from there.

        Args:
            backbone: the frozen network (put in eval mode for the pass, then restored).
            paths: files to extract; duplicates are fine.
            load: decodes and preprocesses one file to a ``(C, H, W)`` tensor; picklable when
                ``num_workers > 0``.
            transform_id: names the preprocessing ``load`` applies; change it when that changes.
            batch_size: images per backbone forward.
            num_workers: DataLoader processes decoding files in parallel.
            shard_size: rows per shard file (the resume granularity and the memory bound).
            progress: show a progress bar.
            keys: the content key of each item, when the items are not files (texts: the
                sha256 of their UTF-8 bytes); ``load`` then receives the items as they are.
            skip_unreadable: a file ``load`` fails on is left out instead of stopping the
                pass: the result has no row for it and lists it in ``Features.skipped``.
            spread: every process of the running ``torch.distributed`` group (torchrun,
                ``accelerate launch``, ``graft fit --devices N``) calls this with the same
                ``paths``; each computes every N-th missing file and all wait for the others,
                so the store ends with the entries one process would have written. Without a
                group it changes nothing.
            order: a sort key per item: the missing items are computed in ascending order of
                it (texts by token count, so each batch pads little and the backbone reads
                the batch's longest text only); the result keeps the items' order.

        Raises:
            DataError: a file is missing or ``load`` fails on it (the message names the file).
        """
        _check_args(batch_size, shard_size, num_workers)
        files = [Path(p) for p in paths] if keys is None else list(paths)
        keys = content_keys(files) if keys is None else list(keys)
        identity = backbone.identity()
        entry = _entry(self.entry_path(identity, transform_id))
        dim = int(backbone.num_features)
        with _writable(self.root):
            self._mark()
            entry.ensure_meta(_meta(backbone, identity, transform_id, dim))
        index = entry.index(dim)
        if entry.verify({index[k][0] for k in keys if k in index}):
            index = entry.index(dim)  # damaged shards are gone: their rows are missing now
        missing: dict[str, Path] = {}
        for key, path in zip(keys, files, strict=True):
            if key not in index:
                missing.setdefault(key, path)
        reused = len(set(keys)) - len(missing)
        if order is not None:
            cost = dict(zip(keys, order, strict=True))
            missing = dict(sorted(missing.items(), key=lambda kv: cost[kv[0]]))
        rank, world, barrier = _group() if spread else (0, 1, _no_barrier)
        barrier()  # every process has listed what is missing before any of them writes
        share = dict(list(missing.items())[rank::world])
        failed: dict[str, str] | None = {} if skip_unreadable else None
        fill = (backbone, entry, load, dim, batch_size, num_workers, shard_size, progress, failed)
        if share:
            self._fill(share, *fill)
        barrier()  # every share is written
        if missing:
            index = entry.index(dim)
        # Rows still missing (another process's share that failed to decode, or a concurrent
        # clear removed them): computed here, as by one process.
        left = {k: p for k, p in missing.items() if k not in index and k not in (failed or {})}
        if left:
            self._fill(left, *fill)
            index = entry.index(dim)
        computed = len(share) + len(left) - len(failed or {})
        if failed:
            view = _view(entry, index, [k for k in keys if k not in failed], dim, reused=reused)
            view.computed = computed
            view.skipped = [(p, failed[k]) for p, k in zip(files, keys, strict=True) if k in failed]
            return view
        return _view(entry, index, keys, dim, computed=computed, reused=reused)

    def _fill(self, missing: dict[str, Any], backbone: Backbone, entry: _Entry, *rest: Any) -> None:
        with _writable(self.root):
            entry.clean()
            _compute(backbone, entry, missing, *rest, cache_dir=self.root.parent)

    def info(self) -> list[dict[str, Any]]:
        """One record per entry: backbone, transform id, rows, bytes on disk, last use."""
        out = []
        for path in self._entry_dirs():
            entry = _entry(path)
            meta = entry.meta()
            spec = meta.get("backbone", {})
            used = time.localtime((path / "meta.json").stat().st_mtime) if meta else None
            out.append(
                {
                    "entry": path.name,
                    "identity": meta.get("identity", path.name.split("-")[0]),
                    "backbone": spec.get("name"),
                    "arch": spec.get("arch"),
                    "transform_id": meta.get("transform_id"),
                    "dim": meta.get("dim"),
                    "rows": len(entry.index(meta.get("dim"))),
                    "bytes": entry.size(),
                    "last_used": time.strftime("%Y-%m-%dT%H:%M:%S", used) if used else None,
                    "path": str(path),
                }
            )
        return out

    def clear(self, backbone_identity: str | None = None) -> int:
        """Delete entries (all, or those of one backbone) and return the bytes freed.

        Only what the store wrote is deleted: entry folders (named by their key, holding a
        ``meta.json``) in a folder that carries the store's marker. Anything else stays.

        Args:
            backbone_identity: a ``Backbone.identity()``, an entry folder name, or a backbone
                name or architecture (clears every weight version of it); None clears all.

        Raises:
            ConfigError: the folder exists but is not a graft feature store (nothing deleted).
        """
        if self.root.exists() and not self.is_store():
            raise ConfigError(
                f"--cache-dir: {self.root} is not a graft feature store (no {MARKER} file in "
                "it); nothing was deleted. Pass the folder given to fit/rank --cache-dir (its "
                "store is DIR/features)"
            )
        freed = 0
        for path in self._entry_dirs():
            meta = _Entry(path).meta()
            spec = meta.get("backbone", {})
            names = {path.name, path.name.split("-")[0], spec.get("name"), spec.get("arch")}
            if backbone_identity is not None and backbone_identity not in names:
                continue
            freed += _Entry(path).size()
            # Rename first: a concurrent reader sees the whole entry or none of it.
            trash = path.with_name(f".trash-{path.name}-{os.getpid()}-{time.time_ns()}")
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)
            _ENTRIES.pop(path, None)
        return freed

    def _entry_dirs(self) -> list[Path]:
        """Folders the store wrote: named by their key, with a ``meta.json``."""
        if not self.root.is_dir():
            return []
        return sorted(
            p
            for p in self.root.iterdir()
            if p.is_dir() and _ENTRY_NAME.match(p.name) and (p / "meta.json").is_file()
        )


def _rows_intact(npy: Path, crc: int | None) -> bool:
    """Whether a shard's rows match their CRC-32 (without one: whether they are all finite)."""
    try:
        rows = np.load(npy, mmap_mode="r")
        if crc is None:
            return bool(np.isfinite(rows).all())
        return zlib.crc32(np.ascontiguousarray(rows).data.cast("B")) == crc
    except (OSError, ValueError):
        return False


@contextmanager
def _writable(root: Path) -> Iterator[None]:
    """Turn a read-only or full store into one line saying what to do.

    Raises:
        ConfigError: the store cannot be written (read-only, another user's, or full).
    """
    try:
        yield
    except OSError as e:
        # numpy reports a short write on a full disk without an errno ("N requested and M written")
        short = e.errno is None and "written" in str(e)
        if e.errno not in _UNWRITABLE and not short:
            raise
        why = "is full" if short or e.errno in (errno.ENOSPC, errno.EDQUOT) else "is read-only"
        raise ConfigError(
            f"feature store {root} {why} ({e.strerror or e}) and lacks features this run needs; "
            "free space, pass --cache-dir a writable folder, or --no-use-cache to train on images"
        ) from None


def _no_barrier() -> None:
    pass


def _group() -> tuple[int, int, Callable[[], None]]:
    """This process's rank, the number of processes and their barrier (torch.distributed)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:

        def barrier() -> None:
            dist.barrier()

        return dist.get_rank(), dist.get_world_size(), barrier
    return 0, 1, _no_barrier


def _check_args(batch_size: int, shard_size: int, num_workers: int) -> None:
    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("shard_size", shard_size, 1),
        ("num_workers", num_workers, 0),
    ):
        if value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")


def _meta(backbone: Backbone, identity: str, transform_id: str, dim: int) -> dict[str, Any]:
    return {
        "backbone": json.loads(json.dumps(backbone.spec.to_dict(), default=str)),
        "data_config": backbone.data_config.to_dict(),
        "identity": identity,
        "transform_id": transform_id,
        "dim": dim,
        "graft_version": __version__,
    }


def _compute(
    backbone: Backbone,
    entry: _Entry,
    missing: dict[str, Path],
    load: Loader,
    dim: int,
    batch_size: int,
    num_workers: int,
    shard_size: int,
    progress: bool,
    failed: dict[str, str] | None = None,
    *,
    cache_dir: Path | None = None,
) -> None:
    from tqdm.auto import tqdm

    device = next(backbone.parameters()).device
    loader = torch.utils.data.DataLoader(
        _Files(list(missing.values()), load, skip=failed is not None),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        collate_fn=None if failed is None else _collate,
    )
    writer = _ShardWriter(entry, list(missing), dim, shard_size)
    was_training = backbone.training
    backbone.eval()
    # disable=None: no bar when the output is not a terminal (logs, CI).
    bar = tqdm(total=len(missing), desc="features", unit="file", disable=None if progress else True)
    beat = Heartbeat("features", len(missing), unit="file")  # a log line every ~30 s instead
    try:
        batches: Iterator[Any] = iter(loader)
        if failed is not None:
            batches = _skipping(batches, writer, failed)
        first = next(batches, None)
        if first is None:
            return
        kind = getattr(backbone, "input_kind", "image")
        with choose_engine(
            backbone, first, input_kind=kind, files=len(missing), cache_dir=cache_dir
        ) as engine:
            for batch in itertools.chain([first], batches):
                out = engine.run(batch)
                if out.shape[1:] != (dim,):
                    raise ValueError(f"backbone output {out.shape} is not (batch, {dim})")
                writer.add(out)
                bar.update(len(out))
                beat.advance(len(out))
        writer.flush()
        entry.note_engine(engine.name)
    finally:
        backbone.train(was_training)
        bar.close()


def _view(
    entry: _Entry, index: dict[str, tuple[str, int]], keys: list[str], dim: int, **counts: int
) -> Features:
    stems = sorted({index[k][0] for k in keys})
    position = {stem: i for i, stem in enumerate(stems)}
    shard_index = np.fromiter((position[index[k][0]] for k in keys), np.int32, len(keys))
    row_index = np.fromiter((index[k][1] for k in keys), np.int64, len(keys))
    shards = [entry.path / f"{stem}.npy" for stem in stems]
    return Features(shards, shard_index, row_index, dim, **counts)
