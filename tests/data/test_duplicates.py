"""The same content never lands in two splits: real files with constructed copies."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import graft.data.content as content
from graft.data import load
from graft.data.base import Dataset


def _split_folder(digits_dir: Path, root: Path) -> Path:
    """``root/{train,test}/<class>/``: 8 train and 4 test digits of classes 0-2."""
    for c in ("0", "1", "2"):
        files = sorted((digits_dir / c).iterdir())
        for split, part in (("train", files[:8]), ("test", files[8:12])):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for f in part:
                shutil.copy(f, root / split / c / f.name)
    return root


def _bytes_per_split(data: Dataset) -> list[set[bytes]]:
    return [{p.read_bytes() for p in s.paths} for s in data.splits().values()]


def test_a_copy_of_a_train_file_in_test_is_dropped_and_reported(
    digits_dir: Path, tmp_path: Path
) -> None:
    root = _split_folder(digits_dir, tmp_path / "d")
    original = sorted((root / "train" / "0").iterdir())[0]
    copy = root / "test" / "1" / "renamed.png"  # another name, another label, same bytes
    shutil.copy(original, copy)
    with pytest.warns(UserWarning, match=r"1 val/test files are copies.*renamed\.png"):
        data = load(root, val_fraction=0.25)
    assert copy not in data.test.paths if data.test else False
    assert [p for p, _ in data.skipped] == [copy]
    assert "--keep-duplicates" in data.skipped[0][1] and str(original) in data.skipped[0][1]
    train, val, test = _bytes_per_split(data)
    assert not (train & test) and not (val & test) and not (train & val)
    assert data.duplicates == {"split_copies": 1, "label_conflicts": 2}  # copy's label: 1
    assert "1 val/test copies of earlier files dropped" in data.describe_duplicates()

    with pytest.warns(UserWarning, match="were kept"):
        kept = load(root, val_fraction=0.25, keep_duplicates=True)
    assert kept.test is not None and copy in kept.test.paths and not kept.skipped
    assert kept.duplicates == {"split_copies": 1, "label_conflicts": 2}


def test_a_copy_in_a_split_column_is_dropped_from_the_later_split(
    digits_dir: Path, tmp_path: Path
) -> None:
    files = [sorted((digits_dir / c).iterdir())[:6] for c in ("0", "1")]
    rows = [f"{p},{c},train" for c, part in enumerate(files) for p in part[:4]]
    rows += [f"{p},{c},val" for c, part in enumerate(files) for p in part[4:]]
    leak = tmp_path / "leak.png"
    shutil.copy(files[0][0], leak)
    table = tmp_path / "t.csv"
    table.write_text("\n".join(["path,label,split", *rows, f"{leak},0,val"]) + "\n")
    with pytest.warns(UserWarning, match="copies of files in an earlier split"):
        data = load(table, test_fraction=0.0)
    assert leak not in data.val.paths and [p for p, _ in data.skipped] == [leak]
    assert not set.intersection(*_bytes_per_split(data))


def test_identical_bytes_under_two_labels_stay_in_one_split_with_a_warning(
    digits_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "d"
    for c in ("0", "1", "2"):
        shutil.copytree(digits_dir / c, root / c)
    originals = sorted((root / "0").iterdir())
    copies = []
    for i, f in enumerate(originals):  # every image of class 0 also filed under class 1
        copies.append(root / "1" / f"also_{i}.png")
        shutil.copy(f, copies[-1])
    for seed in range(4):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            data = load(root, val_fraction=0.2, test_fraction=0.2, seed=seed)
        text = "\n".join(str(w.message) for w in said)
        assert "30 identical images carry different labels" in text
        assert f"{originals[0]} (0), {copies[0]} (1)" in text
        where = {p: name for name, s in data.splits().items() for p in s.paths}
        assert all(where[a] == where[b] for a, b in zip(originals, copies, strict=True))
        assert data.duplicates == {"kept_together": 30, "label_conflicts": 30}
        assert len(data.train) + len(data.val) + len(data.test or []) == 60


def test_splits_without_copies_are_unchanged(digits_dir: Path) -> None:
    from graft.data.splits import make_splits

    data = load(digits_dir, seed=3)
    pool = data.train
    plain = make_splits(
        pool, stratify=True, val_fraction=0.2, test_fraction=0.2, need_val=True,
        need_test=True, seed=1,
    )  # fmt: skip
    grouped = make_splits(
        pool, stratify=True, val_fraction=0.2, test_fraction=0.2, need_val=True,
        need_test=True, seed=1, groups=np.arange(len(pool)) * 7,
    )  # fmt: skip
    for a, b in zip(plain, grouped, strict=True):
        assert a is not None and b is not None and a.paths == b.paths


def test_only_files_of_equal_size_are_read(
    digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted((digits_dir / "0").iterdir())[:3]
    odd = tmp_path / "odd.png"
    odd.write_bytes(files[0].read_bytes() + b"\0" * 4096)  # a size nobody else has
    twin = tmp_path / "twin.png"
    shutil.copy(files[1], twin)
    read: list[Path] = []
    real = content._digest
    monkeypatch.setattr(content, "_digest", lambda p: read.append(p) or real(p))
    sizes = [p.stat().st_size for p in [*files, odd, twin]]
    groups = content.content_groups([*files, odd, twin])
    assert groups[4] == 1 and groups[3] == 3 and len(set(groups.tolist())) == 4
    assert odd not in read and twin in read and files[1] in read
    assert len(read) == sum(sizes.count(s) > 1 for s in sizes)


def test_the_counts_are_on_the_data_line_and_in_the_record(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import graft
    from graft.cli import main

    root = _split_folder(digits_dir, tmp_path / "d")
    shutil.copy(sorted((root / "train" / "2").iterdir())[0], root / "test" / "2" / "again.png")
    out = tmp_path / "model"
    flags = ["--strategy", "feature-extraction", "--epochs", "1", "--no-progress"]
    tiny = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"]
    with pytest.warns(UserWarning, match="again.png"):
        assert main(["fit", str(root), *flags, *tiny, "--out", str(out)]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("data:"))
    assert line.endswith("test 12; 1 val/test copies of earlier files dropped)")
    record = graft.load(out).info["data"]
    assert record["duplicates"] == {"split_copies": 1} and record["n_test"] == 12
    assert record["skipped"] == [str(root / "test" / "2" / "again.png")]
