"""The real handwritten digits written as images, and the split helpers they use."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graft.data.base import Samples
from graft.data.digits import MARKER, write_digits, write_digits_table
from graft.data.loading import load
from graft.data.splits import make_splits, split_indices
from graft.errors import DataError


def test_digits_folder_layout_and_look(digits_dir: Path) -> None:
    classes = sorted(p.name for p in digits_dir.iterdir() if p.is_dir())
    assert classes == [str(d) for d in range(10)]
    files = sorted((digits_dir / "3").iterdir())
    assert len(files) == 15 and all(f.name.startswith("img_") for f in files)
    with Image.open(files[0]) as im:
        assert im.size == (32, 32) and im.mode == "L"
        a = np.asarray(im)
    assert a[0, 0] == 255 and a.min() < 100  # white paper margin, dark ink


def test_pixels_match_sklearn(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    root = write_digits(tmp_path / "d", per_class=1, seed=0, image_size=10)
    path = next((root / "7").iterdir())
    index = int(path.stem.split("_")[1])
    scan = load_digits().images[index]
    with Image.open(path) as im:  # size 10 = 8 + margin: bicubic at scale 1 is the identity
        a = np.asarray(im, dtype=np.float64)
    np.testing.assert_allclose(a[1:-1, 1:-1], np.round(255 * (1 - scan / 16)), atol=0)
    assert load_digits().target[index] == 7


def test_write_is_idempotent_and_rewrites_on_new_params(tmp_path: Path) -> None:
    root = write_digits(tmp_path / "d", per_class=2, seed=0, image_size=12)
    marker = (root / MARKER).stat().st_mtime_ns
    first = sorted(p.relative_to(root) for p in root.rglob("*.png"))
    assert len(first) == 20
    assert write_digits(tmp_path / "d", per_class=2, seed=0, image_size=12) == root
    assert (root / MARKER).stat().st_mtime_ns == marker
    write_digits(tmp_path / "d", per_class=3, seed=0, image_size=12)
    assert len(list(root.rglob("*.png"))) == 30
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left over


def test_subset_depends_on_seed(tmp_path: Path) -> None:
    a = write_digits(tmp_path / "a", per_class=3, seed=0, image_size=8)
    b = write_digits(tmp_path / "b", per_class=3, seed=1, image_size=8)
    names = lambda r: sorted(p.name for p in r.rglob("*.png"))  # noqa: E731
    assert names(a) != names(b)


def test_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(DataError, match="not written by write_digits"):
        write_digits(tmp_path / "mine", per_class=1)
    with pytest.raises(ValueError, match="per_class"):
        write_digits(tmp_path / "x", per_class=1000)


def test_tables_classification_and_regression(tmp_path: Path) -> None:
    table = write_digits_table(tmp_path, per_class=2)
    df = pd.read_csv(table)
    assert list(df.columns) == ["path", "label"] and len(df) == 20
    assert all((tmp_path / p).is_file() for p in df["path"])
    reg = pd.read_csv(write_digits_table(tmp_path, per_class=2, regression=True, name="r.csv"))
    assert list(reg.columns) == ["path", "value", "ink"]
    assert reg["ink"].between(0, 1).all() and reg["value"].tolist() == df["label"].tolist()


def test_split_indices_stratified_and_reproducible() -> None:
    labels = np.repeat(np.arange(4), 25)
    kept, out = split_indices(100, labels, 0.2, seed=0)
    assert len(out) == 20 and np.bincount(labels[out]).tolist() == [5, 5, 5, 5]
    assert np.array_equal(out, split_indices(100, labels, 0.2, seed=0)[1])
    assert not np.array_equal(out, split_indices(100, labels, 0.2, seed=1)[1])
    assert sorted([*kept, *out]) == list(range(100))
    plain_kept, plain_out = split_indices(10, None, 0.3, seed=0)
    assert len(plain_out) == 3 and len(plain_kept) == 7


def test_per_class_fallback_keeps_every_class_in_training() -> None:
    labels = np.array([0] * 9 + [1] + [2] * 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept, out = split_indices(12, labels, 0.5, seed=0, class_names=["a", "b", "c"])
    assert any("['b'] have a single image" in str(w.message) for w in caught)
    assert set(labels[kept]) == {0, 1, 2}
    assert 1 not in labels[out]


def test_make_splits_shares_are_of_the_whole_pool() -> None:
    pool = Samples([Path(f"{i}.png") for i in range(100)], np.repeat(np.arange(2), 50))
    train, val, test = make_splits(
        pool,
        stratify=True,
        val_fraction=0.2,
        test_fraction=0.1,
        need_val=True,
        need_test=True,
        seed=0,
    )
    assert val is not None and test is not None
    assert (len(train), len(val), len(test)) == (70, 20, 10)
    assert not {*train.paths} & {*val.paths} and not {*val.paths} & {*test.paths}


def test_few_labels_scored_on_every_other_digit(tmp_path: Path) -> None:
    """``test=True``: the chosen 10 per class train, the other 1,697 digits are the test split."""
    root = write_digits(tmp_path / "d", per_class=10, image_size=16, test=True)
    train = sorted((root / "train").rglob("*.png"))
    test = sorted((root / "test").rglob("*.png"))
    assert len(train) == 100 and len(test) == 1797 - 100
    assert {p.name for p in train}.isdisjoint({p.name for p in test})
    assert sorted(p.name for p in (root / "train").iterdir()) == [str(c) for c in range(10)]
    data = load(root, verify_images=False)
    assert len(data.test) == 1697 and len(data.train) + len(data.val) == 100
    with pytest.raises(ValueError, match="per_class"):
        write_digits(tmp_path / "e", test=True)
