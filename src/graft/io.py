"""Small file helpers: atomic writes and prediction records as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graft.errors import ConfigError


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
        follow_umask(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``target``; rename it into place on success.

    An existing ``target`` is replaced only after the new folder is complete, so a crash never
    leaves a half-written artifact or checkpoint where a good one was.
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        follow_umask(tmp, directory=True)
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
