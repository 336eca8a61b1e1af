"""One listing of a folder's images for fit and predict: hidden files and folders skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

from graft.data.images import list_images
from graft.model import _expand


def _folder(tmp_path: Path, digits_dir: Path) -> Path:
    src = sorted((digits_dir / "3").iterdir())[0]
    root = tmp_path / "in"
    (root / "__MACOSX").mkdir(parents=True)
    shutil.copy(src, root / "a.png")
    (root / "._a.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS resource fork
    (root / "__MACOSX" / "._a.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / ".hidden").mkdir()
    shutil.copy(src, root / ".hidden" / "b.png")
    (root / "looks_like.png").mkdir()  # a folder named like an image
    shutil.copy(src, root / "looks_like.png" / "c.png")
    return root


def test_predict_lists_a_folder_as_fit_does(tmp_path: Path, digits_dir: Path) -> None:
    root = _folder(tmp_path, digits_dir)
    expected = [root / "a.png", root / "looks_like.png" / "c.png"]
    assert list_images(root) == expected
    assert _expand([root]) == expected


def test_a_file_named_explicitly_is_kept(tmp_path: Path, digits_dir: Path) -> None:
    root = _folder(tmp_path, digits_dir)
    assert _expand([root / "a.png"]) == [root / "a.png"]
