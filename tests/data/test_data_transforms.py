"""Decoding every image mode, preprocessing from a DataConfig, and the torch Dataset."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graft.backbones.base import DataConfig
from graft.data import ImageDataset, Samples, build_transform, load_image, transform_identity
from graft.errors import DataError

CONFIG = DataConfig(input_size=(3, 32, 32), crop_pct=0.875)


def _save(tmp_path: Path, im: Image.Image, name: str) -> Path:
    path = tmp_path / name
    im.save(path)
    return path


def _modes(tmp_path: Path) -> dict[str, tuple[Path, tuple[int, int, int]]]:
    """Files in every mode, each with the RGB value its top-left pixel must decode to."""
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red → white paper
    la = Image.new("LA", (4, 4), (0, 255))  # opaque black
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 1 = blue
    p_clear = p.copy()
    p_clear.info["transparency"] = 1  # blue is the transparent index → white
    i16 = Image.fromarray(np.full((4, 4), 257 * 100, dtype=np.uint16))
    i32 = Image.fromarray(np.full((4, 4), 65535, dtype=np.int32))
    f32 = Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32))
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in naive CMYK
    bilevel = Image.new("1", (4, 4), 1)
    files = {
        "L": (_save(tmp_path, Image.new("L", (4, 4), 77), "l.png"), (77, 77, 77)),
        "RGBA": (_save(tmp_path, rgba, "rgba.png"), (255, 255, 255)),
        "LA": (_save(tmp_path, la, "la.png"), (0, 0, 0)),
        "P": (_save(tmp_path, p, "p.png"), (0, 0, 255)),
        "P+transparency": (_save(tmp_path, p_clear, "pt.png"), (255, 255, 255)),
        "I;16": (_save(tmp_path, i16, "i16.png"), (100, 100, 100)),
        "I": (_save(tmp_path, i32, "i32.tif"), (255, 255, 255)),
        "F": (_save(tmp_path, f32, "f.tif"), (128, 128, 128)),
        "CMYK": (_save(tmp_path, cmyk, "cmyk.jpg"), (255, 0, 0)),
        "1": (_save(tmp_path, bilevel, "one.png"), (255, 255, 255)),
    }
    return files


def test_every_mode_decodes_to_rgb_and_l(tmp_path: Path) -> None:
    for mode, (path, rgb) in _modes(tmp_path).items():
        im = load_image(path, 3)
        assert im.mode == "RGB", mode
        got = im.getpixel((0, 0))
        assert np.allclose(got, rgb, atol=3), (mode, got, rgb)  # JPEG (CMYK) is lossy
        grey = load_image(path, 1)
        assert grey.mode == "L" and grey.size == (4, 4), mode


def test_opening_mode_is_what_the_test_means(tmp_path: Path) -> None:
    for mode, (path, _) in _modes(tmp_path).items():
        with Image.open(path) as im:
            assert im.mode == mode.split("+")[0], (mode, im.mode)


def test_unreadable_and_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad\.png: not a readable image"):
        load_image(bad)
    with pytest.raises(DataError, match=r"gone\.png: no such image file"):
        load_image(tmp_path / "gone.png")


def test_eval_transform_is_deterministic_and_normalised() -> None:
    tf = build_transform(CONFIG)
    white = Image.new("RGB", (50, 40), (255, 255, 255))
    x = tf(white)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    expected = (1 - torch.tensor(CONFIG.mean)) / torch.tensor(CONFIG.std)
    torch.testing.assert_close(x[:, 16, 16], expected)
    torch.testing.assert_close(tf(white), x)
    assert tf.channels == 3 and not tf.train
    assert not build_transform(CONFIG, train=True, augment=False).train


def test_train_transform_augments_without_flips_by_default() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    tf = build_transform(CONFIG, train=True)
    assert tf.train and "Flip" not in repr(tf)
    assert "RandomHorizontalFlip" in repr(build_transform(CONFIG, train=True, hflip=True))
    torch.manual_seed(0)
    a, b = tf(image), tf(image)
    assert a.shape == (3, 32, 32) and not torch.equal(a, b)


def test_one_channel_config_gives_one_channel_from_rgb() -> None:
    grey = DataConfig(input_size=(1, 16, 16), mean=(0.5,), std=(0.5,), crop_pct=1.0)
    x = build_transform(grey)(Image.new("RGB", (20, 20), (255, 255, 255)))
    assert x.shape == (1, 16, 16)
    torch.testing.assert_close(x, torch.ones(1, 16, 16))


def test_transform_identity_is_stable_and_distinguishes() -> None:
    key = transform_identity(CONFIG)
    assert key == transform_identity(DataConfig(input_size=(3, 32, 32), crop_pct=0.875))
    assert key.startswith("eval-v1-") and len(key) == len("eval-v1-") + 16
    assert key != transform_identity(CONFIG.with_image_size(64))
    assert key != transform_identity(CONFIG, train=True)
    assert key == "eval-v1-" + key.split("-")[-1]  # no process-dependent parts
    assert transform_identity(DataConfig()) == "eval-v1-87a6e861a241a6bd"  # reference value


def test_image_dataset_targets_and_batching(tmp_path: Path) -> None:
    paths = [_save(tmp_path, Image.new("L", (10, 10), v), f"{v}.png") for v in (0, 100, 200)]
    cls = ImageDataset(Samples(paths, np.array([2, 0, 1])), build_transform(CONFIG))
    x, y = cls[0]
    assert x.shape == (3, 32, 32) and y.dtype == torch.int64 and y.shape == () and int(y) == 2
    reg_targets = np.array([[1.5, 2.0], [0.0, 1.0], [3.0, 4.0]], dtype=np.float64)
    reg = ImageDataset(Samples(paths, reg_targets), build_transform(CONFIG))
    _, t = reg[2]
    assert t.dtype == torch.float32 and t.shape == (2,)
    torch.testing.assert_close(t, torch.tensor([3.0, 4.0]))
    xb, yb = next(iter(torch.utils.data.DataLoader(reg, batch_size=3)))
    assert xb.shape == (3, 3, 32, 32) and yb.shape == (3, 2)
    pickle.loads(pickle.dumps(cls))  # DataLoader workers need it picklable
