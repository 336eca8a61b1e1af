"""Bad input, consistently: label text, float32 range, duplicated rows, CSV cells, umask."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from graft.data import load
from graft.errors import ConfigError, DataError
from graft.io import atomic_write_text, write_records


def _rows(digits_dir: Path, classes: dict[str, str], per_class: int = 6) -> list[str]:
    out = []
    for folder, label in classes.items():
        out += [f"{p},{label}" for p in sorted((digits_dir / folder).iterdir())[:per_class]]
    return out


def test_labels_keep_their_text(digits_dir: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("\n".join(["path,label", *_rows(digits_dir, {"0": "1", "1": "01"})]) + "\n")
    data = load(table, val_fraction=0.0, test_fraction=0.0)
    assert sorted(data.class_names or []) == ["01", "1"]


def test_a_target_beyond_float32_is_named(digits_dir: Path, tmp_path: Path) -> None:
    rows = [r.replace(",x", ",1.5") for r in _rows(digits_dir, {"0": "x", "1": "x"})]
    rows[3] = rows[3].rsplit(",", 1)[0] + ",1e39"
    table = tmp_path / "t.csv"
    table.write_text("\n".join(["path,value", *rows]) + "\n")
    with pytest.raises(DataError, match=r"row 4: column 'value' is 1e\+39, beyond float32's range"):
        load(table, task="regression", target_columns=["value"])


def test_duplicated_rows_never_land_in_two_splits(digits_dir: Path, tmp_path: Path) -> None:
    rows = _rows(digits_dir, {str(c): str(c) for c in range(4)}, per_class=10)
    copy = tmp_path / "copy.png"  # the same image under another name
    shutil.copy(rows[0].split(",")[0], copy)
    table = tmp_path / "t.csv"
    table.write_text("\n".join(["path,label", *rows * 3, f"{copy},0"]) + "\n")
    with pytest.warns(UserWarning, match="81 duplicate rows dropped"):
        data = load(table, val_fraction=0.25, test_fraction=0.25, seed=0)
    splits = [data.train, data.val] + ([data.test] if data.test is not None else [])
    contents = [{p.read_bytes() for p in s.paths} for s in splits]
    assert sum(len(c) for c in contents) == 40
    assert not (contents[0] & contents[1]) and not (contents[0] & contents[2])
    assert not (contents[1] & contents[2])
    assert sum("duplicate row" in why for _, why in data.skipped) == 81


def test_text_cells_that_look_like_formulas_are_escaped(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    rows = [
        {"path": "a.png", "prediction": '=HYPERLINK("http://x")', "p": -0.5},
        {"path": "@b.png", "prediction": "-1", "p": 0.25},
        {"path": "c.png", "prediction": "+cmd", "p": 1.0},
    ]
    write_records(rows, out)
    read = list(csv.DictReader(out.open()))
    assert [r["prediction"] for r in read] == ['\'=HYPERLINK("http://x")', "-1", "'+cmd"]
    assert [r["path"] for r in read] == ["a.png", "'@b.png", "c.png"]
    assert [r["p"] for r in read] == ["-0.5", "0.25", "1.0"]


def test_files_graft_writes_follow_the_umask(tmp_path: Path) -> None:
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[2]); os.umask(0o027);"
        "from graft.io import atomic_write_text; atomic_write_text(sys.argv[1], 'x')"
    )
    target = tmp_path / "f.txt"
    src = str(Path(__file__).resolve().parents[2] / "src")
    subprocess.run([sys.executable, "-c", code, str(target), src], check=True)
    assert target.stat().st_mode & 0o777 == 0o640
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "g.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "g.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--epochs", "-1"], "--epochs"),
        (["--epochs", "0"], "--epochs"),
        (["--lr", "0"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--top", "-3"], "--top"),
        (["--fraction", "2"], "--fraction"),
        (["--fraction", "nan"], "--fraction"),
        (["--dropout", "1.5"], "--dropout"),
        (["--dropout", "-0.1"], "--dropout"),
        (["--weight-decay", "nan"], "--weight-decay"),
        (["--grad-clip", "0"], "--grad-clip"),
        (["--head-epochs", "-2"], "--head-epochs"),
        (["--mixed-precision", "fp17"], "--mixed-precision"),
    ],
)
def test_invalid_numbers_get_one_line(
    flags: list[str], names: str, digits_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graft.cli import main

    try:
        code = main(["fit", str(digits_dir), "--dry-run", *flags])
    except SystemExit as e:  # argparse's own choices check
        code = int(e.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert names in err[-1] and "Traceback" not in "\n".join(err)


def test_mixed_precision_is_checked_in_the_api_too() -> None:
    from graft.config import FitConfig

    with pytest.raises(ConfigError, match="--mixed-precision must be"):
        FitConfig.create(mixed_precision="fp17")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FitConfig.create(mixed_precision="bf16")


def _short_png(path: Path, size: int = 32) -> Path:
    """A PNG whose chunks and checksums are all valid but whose pixel stream is too short."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # size x size, 8-bit gray
    pixels = zlib.compress(b"\x00" * 40)  # 1,056 bytes needed
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("strategy", ["feature-extraction", "full"])
def test_an_image_that_fails_to_decode_is_skipped_where_a_fit_reads_it(
    strategy: str, digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quick check at load passes a short PNG; the fit reads it (the feature-extraction
    pass, or the training loader), skips it, lists it, and saves a model; --strict stops."""
    import graft
    from graft.cli import main

    data_dir = tmp_path / "digits"
    for c in ("3", "4", "5"):
        files = sorted((digits_dir / c).iterdir())
        for split, part in (("train", files[:11]), ("test", files[11:])):
            (data_dir / split / c).mkdir(parents=True)
            for f in part:
                shutil.copy(f, data_dir / split / c / f.name)
    bad = [_short_png(data_dir / "train" / "3" / "short.png", size=32)]
    bad.append(_short_png(data_dir / "test" / "4" / "short.png", size=40))
    data = load(data_dir)
    assert not data.skipped  # the quick check at load passes them (no decode there)

    out = tmp_path / "model"
    flags = ["--strategy", strategy, "--epochs", "1", "--no-progress", "--batch-size", "4"]
    tiny = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"]
    with pytest.warns(UserWarning, match="short.png"):
        assert main(["fit", str(data_dir), *flags, *tiny, "--out", str(out)]) == 0
    model = graft.load(out)
    assert sorted(model.info["data"]["skipped"]) == sorted(str(p) for p in bad)
    assert model.info["data"]["n_test"] == 12  # 13 test images, less the short one
    capsys.readouterr()
    code = main(["fit", str(data_dir), *flags, *tiny, "--strict", "--out", str(tmp_path / "s")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "short.png" in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("strategy", ["feature_extraction", "full"])
def test_a_file_damaged_after_load_does_not_abort_the_fit(
    strategy: str, digits_dir: Path, tmp_path: Path
) -> None:
    """The real fault: a file that decoded at load is cut short before the fit reads it (a
    network share, a sync client). On main this aborted the whole fit."""
    import graft
    from graft.testing import tiny_backbone

    data_dir = tmp_path / "digits"
    shutil.copytree(digits_dir, data_dir)
    data = load(data_dir, seed=0)
    victim = data.train.paths[5]
    _short_png(victim, size=32)  # the same name, now a PNG whose pixel stream is short
    with pytest.warns(UserWarning, match=victim.name):
        model = graft.fit(
            data, backbone=tiny_backbone(), strategy=strategy, epochs=1, batch_size=8,
            progress=False, log=lambda s: None,
        )  # fmt: skip
    assert model.info["data"]["skipped"] == [str(victim)]
    assert victim not in data.train.paths and model.info["data"]["n_train"] == 104


@pytest.mark.parametrize(
    "flags", [["--val-fraction", "0", "--test-fraction", "0"], ["--val-fraction", "0"]]
)
def test_an_empty_validation_split_is_refused_before_training(
    flags: list[str], digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graft.cli import main

    lines = []
    for dry in (["--dry-run"], ["--out", str(tmp_path / "m"), "--epochs", "1"]):
        assert main(["fit", str(digits_dir), *flags, *dry, "--no-progress"]) == 2
        lines.append(capsys.readouterr().err.strip().splitlines()[-1])
    assert lines[0] == lines[1] and "no validation images" in lines[0]
    assert not (tmp_path / "m").exists()


def test_a_one_row_regression_table_is_refused(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graft.cli import main

    table = tmp_path / "one.csv"
    table.write_text(f"path,value\n{sorted((digits_dir / '0').iterdir())[0]},1.5\n")
    assert main(["fit", str(table), "--task", "regression", "--dry-run"]) == 2
    assert "no validation images" in capsys.readouterr().err


def test_predict_skips_and_lists_unreadable_files(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import graft
    from graft.cli import main
    from graft.testing import tiny_backbone

    model = tmp_path / "m"
    graft.fit(
        digits_dir, backbone=tiny_backbone(), strategy="feature_extraction", epochs=1,
        progress=False, log=lambda s: None, out=model,
    )  # fmt: skip
    good = [str(p) for p in sorted((digits_dir / "4").iterdir())[:2]]
    short = _short_png(tmp_path / "short.png")
    bomb = _short_png(tmp_path / "bomb.png", size=100_000)  # 10^10 pixels declared
    large = _short_png(tmp_path / "large.png", size=_between_one_and_two_limits())
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    files = [good[0], str(short), str(bomb), good[1], str(text), str(large)]
    preds = tmp_path / "p.csv"
    assert main(["predict", str(model), *files, "--output", str(preds)]) == 0
    assert [r["path"] for r in csv.DictReader(preds.open())] == good
    err = capsys.readouterr().err
    assert "Traceback" not in err and "skipped 4 of 6 files" in err
    assert "bomb.png" in err and "DecompressionBomb" in err and "short.png" in err
    assert "large.png: too large" in err and "decompression bomb" in err
    assert main(["predict", str(model), *files, "-o", str(preds), "--fail-on-skip"]) == 1
    assert len(list(csv.DictReader(preds.open()))) == 2  # the rest is still written
    capsys.readouterr()
    assert main(["predict", str(model), *files, "--strict"]) == 2
    assert "short.png" in capsys.readouterr().err.strip().splitlines()[-1]


def _between_one_and_two_limits() -> int:
    """A square side whose pixel count is 1.5x PIL's limit: PIL only warns there."""
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS is not None
    return math.isqrt(Image.MAX_IMAGE_PIXELS * 3 // 2)


def test_an_image_above_the_pixel_limit_is_skipped_not_decoded(
    digits_dir: Path, tmp_path: Path
) -> None:
    from PIL import Image

    from graft.data import load_image

    data_dir = tmp_path / "digits"
    shutil.copytree(digits_dir, data_dir)
    large = _short_png(data_dir / "2" / "large.png", size=_between_one_and_two_limits())
    with pytest.warns(Image.DecompressionBombWarning), Image.open(large):
        pass  # PIL alone opens it with a warning (and would try to decode 134 million pixels)
    with pytest.warns(UserWarning, match=r"large\.png: too large .* decompression bomb"):
        data = load(data_dir)
    assert [p for p, _ in data.skipped] == [large]
    with pytest.raises(DataError, match=r"large\.png: too large"):
        load_image(large)


def test_a_class_folder_linking_to_its_parent_is_no_class(digits_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "digits"
    shutil.copytree(digits_dir, data_dir)
    (data_dir / "everything").symlink_to(data_dir, target_is_directory=True)
    with pytest.warns(UserWarning, match="everything links back"):
        data = load(data_dir)
    assert sorted(data.class_names or []) == [str(i) for i in range(10)]
