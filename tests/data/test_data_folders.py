"""Image folders: layouts, splits, and every mistake a person can make with them."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.data import load
from graft.data.digits import write_digits
from graft.errors import ConfigError, DataError


def _img(path: Path, value: int = 128, size: int = 8) -> Path:
    """A small grey image, different for every path (identical files would be grouped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("L", (size, size), value)
    mark = zlib.crc32(str(path).encode())
    im.putpixel((0, 0), mark & 255)
    im.putpixel((1, 0), (mark >> 8) & 255)
    im.save(path)
    return path


def _classes(root: Path, spec: dict[str, int]) -> Path:
    for name, n in spec.items():
        for i in range(n):
            _img(root / name / f"{i}.png", value=10 * i)
    return root


def test_digits_folder_loads_with_stratified_splits(digits_dir: Path) -> None:
    data = load(digits_dir, seed=0)
    assert data.task == "classification"
    assert data.class_names == [str(d) for d in range(10)]
    assert data.test is not None
    assert (len(data.train), len(data.val), len(data.test)) == (105, 22, 23)
    assert data.train.targets.dtype == np.int64
    # Stratified: 15 images per class give every class 2 or 3 images in val and in test.
    for split in (data.val, data.test):
        counts = np.bincount(split.targets, minlength=10)
        assert counts.min() >= 2 and counts.max() <= 3
    everything = {*data.train.paths, *data.val.paths, *data.test.paths}
    assert len(everything) == 150
    assert not data.skipped


def test_split_is_reproducible_by_seed(digits_dir: Path) -> None:
    a, b, c = load(digits_dir, seed=3), load(digits_dir, seed=3), load(digits_dir, seed=4)
    assert a.val.paths == b.val.paths and a.test is not None and b.test is not None
    assert a.test.paths == b.test.paths
    assert a.val.paths != c.val.paths


def test_fractions_zero_give_no_val_and_no_test(digits_dir: Path) -> None:
    data = load(digits_dir, val_fraction=0.0, test_fraction=0.0)
    assert len(data.train) == 150 and len(data.val) == 0 and data.test is None


def test_bad_fractions_are_config_errors(digits_dir: Path) -> None:
    with pytest.raises(ConfigError, match="below 1"):
        load(digits_dir, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ConfigError, match="val_fraction"):
        load(digits_dir, val_fraction=-0.1)


def test_split_folders_are_used_as_given(tmp_path: Path) -> None:
    root = write_digits(tmp_path / "d", per_class=10, splits=True)
    data = load(root)
    assert data.test is not None
    for split, samples in (("train", data.train), ("val", data.val), ("test", data.test)):
        assert all(p.parent.parent.name == split for p in samples.paths)
        assert [p.parent.name for p in samples.paths] == [
            data.class_names[t]
            for t in samples.targets  # type: ignore[index]
        ]
    assert (len(data.train), len(data.val), len(data.test)) == (70, 15, 15)


def test_valid_alias_and_missing_test_is_carved_from_train(tmp_path: Path) -> None:
    _classes(tmp_path / "train", {"a": 10, "b": 10})
    _classes(tmp_path / "valid", {"a": 2, "b": 2})
    data = load(tmp_path, test_fraction=0.2)
    assert len(data.val) == 4 and all(p.parent.parent.name == "valid" for p in data.val.paths)
    assert data.test is not None and len(data.test) == 4 and len(data.train) == 16
    assert load(tmp_path, test_fraction=0.0).test is None


def test_class_only_in_val_is_an_error(tmp_path: Path) -> None:
    _classes(tmp_path / "train", {"a": 3, "b": 3})
    _classes(tmp_path / "val", {"a": 1, "c": 1})
    with pytest.raises(DataError, match=r"\['c'\] appear only in val/test"):
        load(tmp_path)


def test_split_and_class_folders_mixed_is_an_error(tmp_path: Path) -> None:
    _classes(tmp_path / "train", {"a": 2, "b": 2})
    _classes(tmp_path, {"cats": 2})
    with pytest.raises(DataError, match="cats"):
        load(tmp_path)


def test_empty_class_folder_warns_and_is_skipped(tmp_path: Path) -> None:
    _classes(tmp_path, {"a": 4, "b": 4})
    (tmp_path / "empty_one").mkdir()
    (tmp_path / "empty_one" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="empty_one"):
        data = load(tmp_path, val_fraction=0.25, test_fraction=0.0)
    assert data.class_names == ["a", "b"]


def test_single_class_names_it(tmp_path: Path) -> None:
    _classes(tmp_path, {"cats": 5})
    with pytest.raises(DataError, match="need at least 2 classes; found only 'cats' in"):
        load(tmp_path)


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load(tmp_path / "nope")
    with pytest.raises(DataError, match="no images found"):
        load(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder or a table"):
        load(tmp_path / "notes.txt")


def test_images_without_class_folders_say_what_to_do(tmp_path: Path) -> None:
    _img(tmp_path / "1.png")
    with pytest.raises(DataError, match="no class folders"):
        load(tmp_path)


def test_folder_with_regression_task_is_a_config_error(digits_dir: Path) -> None:
    with pytest.raises(ConfigError, match="table with target columns"):
        load(digits_dir, task="regression")


def test_extensions_any_case_nested_and_hidden(tmp_path: Path) -> None:
    _classes(tmp_path, {"a": 3, "b": 3})
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "UPPER.JPG", format="JPEG")
    _img(tmp_path / "b" / "sub" / "deep.PNG")
    _img(tmp_path / "b" / ".hidden.png")
    _img(tmp_path / "b" / ".cache" / "x.png")
    (tmp_path / "b" / "readme.md").write_text("x")
    data = load(tmp_path, val_fraction=0.0, test_fraction=0.0)
    names = sorted(p.name for p in data.train.paths)
    assert "UPPER.JPG" in names and "deep.PNG" in names
    assert len(names) == 8


def test_numeric_class_names_sort_by_value(tmp_path: Path) -> None:
    _classes(tmp_path, {"10": 2, "2": 2, "1": 2})
    data = load(tmp_path, val_fraction=0.0, test_fraction=0.0)
    assert data.class_names == ["1", "2", "10"]


def _corrupt(root: Path) -> list[Path]:
    not_image = root / "a" / "text.png"
    not_image.write_text("hello")
    truncated_png = root / "b" / "cut.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(truncated_png)
    truncated_png.write_bytes(truncated_png.read_bytes()[:60])
    truncated_jpg = root / "b" / "cut.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(truncated_jpg, quality=95)
    truncated_jpg.write_bytes(truncated_jpg.read_bytes()[:2000])
    return [not_image, truncated_png, truncated_jpg]


def test_unreadable_images_are_skipped_with_one_warning(tmp_path: Path) -> None:
    _classes(tmp_path, {"a": 4, "b": 4})
    bad = _corrupt(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load(tmp_path, val_fraction=0.0, test_fraction=0.0)
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1 and "--strict" in messages[0]
    assert all(str(p) in messages[0] for p in bad)
    assert sorted(p for p, _ in data.skipped) == sorted(bad)
    assert len(data.train) == 8
    assert load(tmp_path, verify_images=False, val_fraction=0.0, test_fraction=0.0).skipped == []


def test_strict_stops_at_unreadable_image(tmp_path: Path) -> None:
    _classes(tmp_path, {"a": 4, "b": 4})
    _corrupt(tmp_path)
    with pytest.raises(DataError, match=r"text\.png: not a readable image.*--strict"):
        load(tmp_path, strict=True)


def test_tiny_class_does_not_crash_and_trains(tmp_path: Path) -> None:
    _classes(tmp_path, {"big": 20, "small": 1})
    with pytest.warns(UserWarning, match=r"\['small'\] have a single image"):
        data = load(tmp_path)
    assert data.class_names == ["big", "small"]
    assert 1 in data.train.targets  # the single image of 'small' trains
    assert len(data.train) + len(data.val) + (len(data.test) if data.test else 0) == 21


def test_jpeg_with_data_after_its_end_marker_is_kept(tmp_path: Path) -> None:
    from graft.data.images import check_image

    path = tmp_path / "camera.jpg"
    Image.new("RGB", (32, 32), (10, 200, 10)).save(path)
    path.write_bytes(path.read_bytes() + b"vendor trailer" * 10)
    assert check_image(path) is None
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[:300])
    assert check_image(cut) is not None
