"""Fashion-MNIST read from Debian's dataset-fashion-mnist (CI installs it) and written as folders."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.data import load
from graft.data.fashion_mnist import (
    CLASSES,
    DEFAULT_DIR,
    read_fashion_mnist,
    write_fashion_mnist,
)
from graft.errors import DataError

pytestmark = pytest.mark.skipif(
    not DEFAULT_DIR.is_dir(),
    reason="Debian package dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist)",
)


def test_reads_the_official_parts() -> None:
    images, labels = read_fashion_mnist("train")
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [6000] * 10
    t_images, t_labels = read_fashion_mnist("test")
    assert t_images.shape == (10_000, 28, 28)
    assert np.bincount(t_labels).tolist() == [1000] * 10
    # Real photos: dark background, bright products, every grey level used.
    assert images[:100].mean() < 100 and images.max() == 255 and len(np.unique(images[:100])) == 256


def test_writes_class_folders_graft_loads(tmp_path: Path) -> None:
    root = write_fashion_mnist(tmp_path / "fm", per_class=5, seed=1, test=20)
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(CLASSES)
    assert all(len(list((root / "train" / c).glob("*.png"))) == 5 for c in CLASSES)
    assert all(len(list((root / "test" / c).glob("*.png"))) == 2 for c in CLASSES)
    images, labels = read_fashion_mnist("train")
    one = next((root / "train" / "ankle_boot").glob("*.png"))
    index = int(one.stem.split("_")[1])
    assert labels[index] == CLASSES.index("ankle_boot")
    with Image.open(one) as im:
        assert im.mode == "L" and im.size == (28, 28)
        assert np.array_equal(np.asarray(im), images[index])  # lossless, the original pixels
    data = load(root)
    assert data.class_names == sorted(CLASSES)
    assert data.test is not None and len(data.test) == 20
    assert len(data.train) + len(data.val) == 50


def test_seed_moves_train_not_test_and_rewrites_only_on_change(tmp_path: Path) -> None:
    a = write_fashion_mnist(tmp_path / "a", per_class=3, seed=0, test=10)
    b = write_fashion_mnist(tmp_path / "b", per_class=3, seed=1, test=10)

    def names(root: Path, part: str) -> set[str]:
        return {p.name for p in (root / part).rglob("*.png")}

    assert names(a, "test") == names(b, "test")
    assert names(a, "train") != names(b, "train")
    stamp = (a / ".graft-fashion-mnist.json").stat().st_mtime_ns
    assert write_fashion_mnist(a, per_class=3, seed=0, test=10) == a
    assert (a / ".graft-fashion-mnist.json").stat().st_mtime_ns == stamp  # reused
    write_fashion_mnist(a, per_class=2, seed=0, test=None)  # other params: rewritten
    assert not (a / "test").exists() and len(list(a.rglob("*.png"))) == 20


def test_missing_package_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        write_fashion_mnist(tmp_path / "out", source=tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(DEFAULT_DIR, src)
    with gzip.open(src / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(np.array([2051, 3], dtype=">i4").tobytes() + b"\x00\x01\x02")  # images' magic
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: not an idx file"):
        read_fashion_mnist("train", src)
    with pytest.raises(ValueError, match="multiple of 10"):
        write_fashion_mnist(tmp_path / "x", test=15, source=src)
    with pytest.raises(DataError, match="exists and was not written"):
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "keep.txt").write_text("user data")
        write_fashion_mnist(tmp_path / "mine", source=src)
