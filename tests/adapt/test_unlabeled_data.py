"""Unlabeled target images from folders (any layout) and tables of paths; actionable errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from graft.data.unlabeled import load_unlabeled, unlabeled_samples
from graft.errors import DataError


def test_folder_at_any_depth_ignores_classes_and_hidden_files(
    flat_target: Path, tmp_path: Path
) -> None:
    files = sorted(flat_target.iterdir())[:4]
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for dest in (tmp_path / "loose.png", tmp_path / "a" / "x.png", tmp_path / "a/deep/y.png"):
        shutil.copy(files[0], dest)
    shutil.copy(files[1], tmp_path / ".hidden" / "z.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert load_unlabeled(tmp_path) == [
        tmp_path / "a" / "deep" / "y.png",
        tmp_path / "a" / "x.png",
        tmp_path / "loose.png",
    ]


def test_table_of_paths_keeps_its_order_and_ignores_other_columns(
    flat_target: Path, tmp_path: Path
) -> None:
    (tmp_path / "img").mkdir()
    for p in sorted(flat_target.iterdir())[:3]:
        shutil.copy(p, tmp_path / "img" / p.name)
    names = [f"img/{p.name}" for p in sorted((tmp_path / "img").iterdir())][::-1]
    table = tmp_path / "target.csv"
    pd.DataFrame({"file": names, "label": ["x", "y", "z"]}).to_csv(table, index=False)
    assert load_unlabeled(table) == [tmp_path / n for n in names]
    samples = unlabeled_samples(load_unlabeled(table))
    assert samples.targets.tolist() == [0, 0, 0], "placeholders, not the table's labels"


def test_mistakes_name_the_file_and_the_fix(flat_target: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_unlabeled(tmp_path / "missing")
    with pytest.raises(DataError, match="no images found"):
        load_unlabeled(tmp_path)
    table = tmp_path / "t.csv"
    pd.DataFrame({"where": ["a.png"]}).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"no path column.*Available columns: where"):
        load_unlabeled(table)
    pd.DataFrame({"path": ["gone.png"]}).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"row 1: gone.png not found"):
        load_unlabeled(table)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="not a folder or a table"):
        load_unlabeled(tmp_path / "x.json")


def test_unreadable_images_are_skipped_or_stop_with_strict(
    flat_target: Path, tmp_path: Path
) -> None:
    shutil.copy(sorted(flat_target.iterdir())[0], tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="1 unreadable images were skipped"):
        assert load_unlabeled(tmp_path) == [tmp_path / "good.png"]
    with pytest.raises(DataError, match=r"bad\.png: not a readable image"):
        load_unlabeled(tmp_path, strict=True)
