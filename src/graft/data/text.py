"""Text data: folders of class folders holding ``.txt`` files, and tables with a text column.

A text dataset is a :class:`~graft.data.base.Dataset` with ``input_kind="text"`` whose samples
carry their texts (``Samples.texts``); ``Samples.paths`` names where each text came from (the
``.txt`` file, or ``table.csv:row N``) for messages and predictions. The feature store keys a
text by the sha256 of its UTF-8 bytes, so the same text in two files is embedded once.

Bad input is skipped with a listed reason (or stops the run with ``strict``): an empty or
whitespace-only text, a file that is not valid UTF-8 (the message names the file, the encoding
tried and the byte offset).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from graft.data.images import SPLIT_NAMES, is_image_file, split_folders, subfolders
from graft.data.tables import TABLE_EXTENSIONS, find_column, read_table
from graft.errors import DataError, listing

TEXT_EXTENSIONS = frozenset({".txt"})
ENCODING = "utf-8"


def is_text_file(path: Path) -> bool:
    """A ``.txt`` file that is not hidden."""
    return path.suffix.lower() in TEXT_EXTENSIONS and not path.name.startswith(".")


def list_texts(folder: Path) -> list[Path]:
    """``.txt`` files below ``folder`` (recursively), sorted, skipping hidden entries."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        out += [Path(dirpath, f) for f in filenames if is_text_file(Path(f))]
    return sorted(out)


def is_text_folder(root: Path) -> bool:
    """True when ``root`` holds ``.txt`` files and no images (a folder of text documents)."""
    seen_text = False
    for _dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if is_image_file(Path(f)):
                return False
            seen_text = seen_text or is_text_file(Path(f))
    return seen_text


def text_key(text: str) -> str:
    """The feature store's content key of a text: sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text(path: Path) -> str:
    """The text of one file, decoded as UTF-8 (a byte-order mark is dropped).

    Raises:
        DataError: the file cannot be read or is not valid UTF-8 (names the file, the encoding
            and the offset of the first bad byte).
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}); check the path") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not valid {ENCODING} text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            f"tried encoding {ENCODING}; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def read_text_folder(
    root: Path, *, strict: bool = False
) -> tuple[list[Path], list[str], list[str | None], list[str], list[tuple[Path, str]]]:
    """Every ``.txt`` file below ``root``: paths, class names, splits, texts, skipped files.

    The layout is that of image folders: ``<class>/*.txt``, optionally inside ``train/``,
    ``val/`` and ``test/``.

    Raises:
        DataError: no class folders with text files; with ``strict``, an empty or undecodable file.
    """
    layout = split_folders(root)
    parts: dict[str | None, Path] = {None: root}
    if layout is not None:
        parts = {k: v for k, v in layout.items()}
    paths: list[Path] = []
    labels: list[str] = []
    splits: list[str | None] = []
    texts: list[str] = []
    skipped: list[tuple[Path, str]] = []
    for split, folder in parts.items():
        for d in subfolders(folder):
            for f in list_texts(d):
                text, reason = _checked(f, strict)
                if reason is not None:
                    skipped.append((f, reason))
                    continue
                paths.append(f)
                labels.append(d.name)
                splits.append(split)
                texts.append(text)
    if not paths and not skipped:
        raise DataError(
            f"{root}: no text files found; expected class folders holding .txt files, "
            f"e.g. {root}/sport/001.txt (or pass a CSV table with --text-column)"
        )
    warn_skipped(skipped, str(root))
    return paths, labels, splits, texts, skipped


def _checked(path: Path, strict: bool) -> tuple[str, str | None]:
    try:
        text = read_text(path)
    except DataError as e:
        if strict:
            raise
        return "", str(e).split(": ", 1)[1]
    if not text.strip():
        if strict:
            raise DataError(f"{path}: empty text (only whitespace); remove the file or fill it")
        return "", "empty text (only whitespace)"
    return text, None


def blank_rows(texts: list[str], where: list[Path], *, strict: bool) -> list[tuple[Path, str]]:
    """Rows whose text is empty or whitespace only (skipped; an error with ``strict``)."""
    bad = [
        (p, "empty text (only whitespace)")
        for p, t in zip(where, texts, strict=True)
        if not t.strip()
    ]
    if bad and strict:
        raise DataError(f"{bad[0][0]}: empty text (only whitespace); fill or remove the row")
    return bad


def warn_skipped(skipped: list[tuple[Path, str]], source: str) -> None:
    """One warning listing the first skipped texts and the count."""
    if not skipped:
        return
    shown = listing([f"{p}: {r}" for p, r in skipped], limit=5)
    warnings.warn(
        f"{source}: {len(skipped)} texts skipped (pass --strict to stop instead):{shown}",
        stacklevel=3,
    )


def texts_to_predict(
    files: list[str], texts: list[str], text_column: str | None
) -> tuple[list[str], list[str]]:
    """Names and texts to predict: given texts, ``.txt`` files/folders, or a table's column.

    Raises:
        DataError: nothing to predict, a table without ``text_column``, an unreadable file.
    """
    names = [f"--text {i + 1}" for i in range(len(texts))]
    out = list(texts)
    for f in files:
        path = Path(f)
        if path.suffix.lower() in TABLE_EXTENSIONS:
            if text_column is None:
                raise DataError(f"{path}: a table; pass --text-column NAME (the texts' column)")
            df = read_table(path)
            column = find_column(df, text_column, path, "text_column")
            values = ["" if v is None or v != v else str(v) for v in df[column].tolist()]
            names += [f"{path} row {i + 1}" for i in range(len(values))]
            out += values
            continue
        found = list_texts(path) if path.is_dir() else [path]
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
        names += [str(p) for p in found]
        out += [read_text(p) for p in found]
    if not out:
        raise DataError("no texts to predict; pass --text TEXT, .txt files, or a table")
    return names, out


__all__ = [
    "ENCODING",
    "SPLIT_NAMES",
    "TEXT_EXTENSIONS",
    "blank_rows",
    "is_text_folder",
    "list_texts",
    "read_text",
    "read_text_folder",
    "text_key",
    "texts_to_predict",
    "warn_skipped",
]
