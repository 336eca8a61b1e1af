"""Small file helpers: the cache folder, atomic writes and prediction records as CSV or JSON."""

from __future__ import annotations

import csv
import ctypes
import errno
import functools
import glob
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graft.errors import ConfigError


def cache_root() -> Path:
    """graft's cache folder: ``$GRAFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/graft`` or
    ``~/.cache/graft``; the feature store lives in ``features/``, exported engines in
    ``engines/``."""
    if os.environ.get("GRAFT_CACHE_DIR"):
        return Path(os.environ["GRAFT_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "graft"


def umask() -> int:
    """The process's file-creation mask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


def follow_umask(path: str | Path, *, directory: bool = False) -> None:
    """Give a file (or folder) made by ``mkstemp``/``mkdtemp`` (0600/0700) the mode an ordinary
    ``open``/``mkdir`` would have given it: 0666 (0777) less the umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        follow_umask(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


#: Test hook: seconds to sleep inside the crash window of a replacing save (the kill tests aim
#: at it): after the atomic swap and before the old folder is removed, or, on the fallback path,
#: between moving the old folder aside and renaming the new one in. Unset in normal use.
PAUSE_ENV = "GRAFT_TEST_PAUSE_BETWEEN_RENAMES"
#: Set to 0 to replace a folder with two renames even where the atomic swap is available (an
#: escape hatch for a file system that misreports it; the tests use it to run the fallback).
EXCHANGE_ENV = "GRAFT_RENAME_EXCHANGE"


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``target``; put it in place on success.

    Every file and the folder are fsynced first, so a power cut afterwards leaves complete
    files. An existing ``target`` is replaced by swapping the two folders in one atomic step
    (Linux ``renameat2(RENAME_EXCHANGE)``): at every instant ``target`` holds the old model or
    the new one; the old one, now under the temporary name, is then deleted, and a crash before
    that leaves only a leftover that the next write or load removes. Where the swap is not
    available (another OS, a file system without it) the old folder is moved aside
    (``.NAME.old-PID``), the new one renamed in, and only then the old one deleted; a crash
    between those two renames is repaired by the next write or load (:func:`recover_dir` puts
    the old folder back). Leftover temporary folders of killed writers are removed first.
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    try:
        follow_umask(tmp, directory=True)
        yield tmp
        fsync_tree(tmp)
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return
    if exchange(tmp, final):  # ``final`` is the new folder now, ``tmp`` the old one
        _fsync_dir(final.parent)
        _pause_for_tests()
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.replace(final, old)
    _fsync_dir(final.parent)
    _pause_for_tests()
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def _pause_for_tests() -> None:
    if os.environ.get(PAUSE_ENV):
        time.sleep(float(os.environ[PAUSE_ENV]))


# renameat2(2) flags and the syscall's number where glibc (before 2.28) lacks the wrapper.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "arm64": 276}
#: errno values meaning "no atomic swap here": the caller falls back to two renames.
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EPERM}


def exchange(a: str | Path, b: str | Path) -> bool:
    """Swap two existing paths atomically; False where the OS or file system cannot.

    Linux ``renameat2(RENAME_EXCHANGE)`` through ctypes (glibc's wrapper, else the raw
    syscall). Any other OS, an old kernel (ENOSYS) or a file system without the flag (EINVAL)
    gives False and changes nothing; other errors (a missing path, no permission to write)
    raise :class:`OSError`.
    """
    if not sys.platform.startswith("linux") or os.environ.get(EXCHANGE_ENV) == "0":
        return False
    call = _renameat2()
    if call is None:
        return False
    ctypes.set_errno(0)
    if call(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """glibc's ``renameat2`` (2.28 and later), else the raw syscall; None where neither."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    wrapper = getattr(libc, "renameat2", None)
    if wrapper is None:
        return _syscall_renameat2(libc)
    wrapper.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    wrapper.restype = ctypes.c_int
    return wrapper


def _syscall_renameat2(libc: ctypes.CDLL) -> Callable[..., int] | None:
    number = _SYS_RENAMEAT2.get(platform.machine())
    if number is None:
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long

    def call(fd_a: int, a: bytes, fd_b: int, b: bytes, flags: int) -> int:
        args = (ctypes.c_long(fd_a), a, ctypes.c_long(fd_b), b, ctypes.c_ulong(flags))
        return int(syscall(ctypes.c_long(number), *args))

    return call


def fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder``, then each folder (contents reach the disk first)."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))
        del dirs


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory handles (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def aside_dirs(target: str | Path) -> list[Path]:
    """Folders an interrupted :func:`atomic_dir` moved ``target`` to (``.NAME.old-PID``)."""
    final = Path(target)
    if not final.parent.is_dir():
        return []
    return sorted(final.parent.glob(f".{glob.escape(final.name)}.old-*"))


def recover_dir(target: str | Path) -> list[str]:
    """Repair what a killed :func:`atomic_dir` left beside ``target``; return what was done.

    A folder moved aside while ``target`` is missing goes back to ``target`` (the crash came
    between the two renames); one moved aside while ``target`` exists is stale and deleted.
    Temporary folders of processes that no longer run are deleted.
    """
    final, done = Path(target), []
    for old in aside_dirs(final):
        if _pid_alive(_pid_of(old.name.rsplit(".old-", 1)[1])):
            continue
        if not final.exists():
            os.replace(old, final)
            done.append(f"restored {final} from {old.name} (a save was interrupted)")
        else:
            shutil.rmtree(old, ignore_errors=True)
            done.append(f"removed {old.name} (left by an interrupted save)")
    if final.parent.is_dir():
        for tmp in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
            if tmp.is_dir() and not _pid_alive(_pid_of(tmp.name.rsplit(".tmp-", 1)[1])):
                shutil.rmtree(tmp, ignore_errors=True)
                done.append(f"removed {tmp.name} (left by a killed save)")
    return done


def _pid_of(text: str) -> int | None:
    head = text.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _pid_alive(pid: int | None) -> bool:
    """True when ``pid`` is a running process (None, an old-style name: treated as dead)."""
    if pid is None or pid == 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PROBE_BYTES = 1 << 16


def check_destination(
    target: str | Path, *, flag: str, is_ours: Callable[[Path], bool], what: str
) -> Path:
    """Refuse, before any work, a destination graft must not or cannot replace.

    Args:
        target: the folder a run will write (``--out``).
        flag: the option that named it, for the message.
        is_ours: True for a folder graft itself wrote there (it may be replaced).
        what: what graft writes there, for the message (``a graft model``).

    Raises:
        ConfigError: the current folder or one above it, a file, a folder holding anything
            but ``what``, or a place where a probe write fails (read-only, full). One line
            that says what to do.
    """
    final = Path(target).expanduser()
    shown = f"{flag} {target}"
    resolved = final.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path.home().resolve():
        raise ConfigError(
            f"{shown}: is the current folder or one above it; graft writes {what} into a folder "
            "of its own; name a new one, e.g. --out runs/model"
        )
    recover_dir(final)
    if final.exists() and not final.is_dir():
        raise ConfigError(f"{shown}: is a file; name a folder for {what}")
    if final.is_dir() and any(final.iterdir()) and not is_ours(final):
        raise ConfigError(
            f"{shown}: holds files that are not {what}; graft replaces only a folder it saved "
            "itself; choose a new or empty folder"
        )
    _probe_write(_nearest_existing(final.parent), shown)
    return final


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _probe_write(folder: Path, shown: str) -> None:
    """Write, sync and delete a small file in ``folder``: read-only and full disks fail here."""
    if not folder.is_dir():
        raise ConfigError(f"{shown}: {folder} is not a folder; name a folder path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".graft-probe-", dir=folder)
    except OSError as e:
        raise ConfigError(f"{shown}: cannot write in {folder} ({e.strerror}); {_FIX}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * _PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise ConfigError(f"{shown}: cannot write in {folder} ({e.strerror}); {_FIX}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


_FIX = "choose a folder on a writable disk with free space"


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) gets a leading
    apostrophe; numbers, and text that is a plain number (``-1``), are written as they are."""
    if not isinstance(value, str) or not value.startswith(_FORMULA):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def records_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


def write_records(
    rows: Sequence[dict[str, Any]], output: str | Path | None, *, fmt: str | None = None
) -> None:
    """Write records as CSV or JSON to ``output`` (atomically) or to stdout when None."""
    if fmt is None:
        suffix = Path(output).suffix.lower() if output else ".csv"
        fmt = {".csv": "csv", ".json": "json"}.get(suffix)
        if fmt is None:
            raise ConfigError(f"--output {output}: unknown suffix {suffix!r}; use .csv or .json")
    text = json.dumps(list(rows), indent=2) + "\n" if fmt == "json" else records_to_csv(rows)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
