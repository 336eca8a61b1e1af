"""`graft rank`, `graft similarity`, `graft advise` and `graft cache` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from graft.cli import main


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("store"))


def test_rank_bundled_and_tiny_backbones_on_digits(
    digits_dir: Path, cache: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cands = "efficientnet_lite0@64,timm:test_efficientnet@random@32"
    assert main(["rank", str(digits_dir), "--backbones", cands, "--cache-dir", cache]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0@64" in out and "timm:test_efficientnet@random@32" in out
    assert "recommended: " in out and "computed" in out
    assert main(["rank", str(digits_dir), "--backbones", cands, "--cache-dir", cache]) == 0
    assert "0 computed" in capsys.readouterr().out, "a second rank reads stored features"


def test_similarity_digits_vs_digits_and_vs_flipped(
    digits_dir: Path, tmp_path: Path, cache: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image, ImageOps

    neg = tmp_path / "negatives"
    for p in sorted(digits_dir.rglob("*.png")):
        (neg / p.parent.name).mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(p).convert("RGB")).save(neg / p.parent.name / p.name)
    args = ["--backbone", "efficientnet_lite0", "--image-size", "64", "--cache-dir", cache]
    assert main(["similarity", str(digits_dir), str(digits_dir), *args]) == 0
    same = capsys.readouterr().out
    assert "MMD²" in same and "proxy A-distance" in same and "CORAL" in same
    assert "near:" in same
    assert main(["similarity", str(digits_dir), str(neg), *args]) == 0
    flipped = capsys.readouterr().out
    assert "near:" not in flipped and "95% interval" in flipped  # moderate on 4 components


def test_advise_prints_the_reasoning(
    digits_dir: Path, cache: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["advise", str(digits_dir), "--image-size", "64", "--cache-dir", cache]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("advice: ") and "gap to the source" in out and "guard:" in out


def test_cache_info_and_clear(cache: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "info", "--cache-dir", cache]) == 0
    info = capsys.readouterr().out
    assert "efficientnet_lite0" in info and "rows" in info
    assert main(["cache", "clear", "--backbone", "efficientnet_lite0", "--cache-dir", cache]) == 0
    assert "freed" in capsys.readouterr().out
    assert main(["cache", "info", "--cache-dir", cache]) == 0
    assert "efficientnet_lite0" not in capsys.readouterr().out


def test_unknown_score_is_a_one_line_error(
    digits_dir: Path, cache: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rank", str(digits_dir), "--backbones", "x", "--score", "logmee"]
    assert main([*argv, "--cache-dir", cache]) == 2
    assert "logme" in capsys.readouterr().err
