"""Loaders: decoded images shared between the frozen passes of one ranking."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.model import GraftModel
from graft.tasks import Classification
from graft.testing import tiny_backbone
from graft.training import loaders
from graft.training.loaders import FileLoader, decoded_once


def _loader(size: int) -> FileLoader:
    backbone = tiny_backbone()
    backbone.data_config = backbone.data_config.with_image_size(size)
    return FileLoader(GraftModel(backbone, Classification.spec_for(["a", "b"])))


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    real = loaders.load_image

    def counted(path: Path, channels: int = 3) -> object:
        seen.append(path)
        return real(path, channels)

    monkeypatch.setattr(loaders, "load_image", counted)
    return seen


def test_within_decoded_once_a_file_is_decoded_once_per_preprocessing(
    digits_dir: Path, decodes: list[Path]
) -> None:
    files = sorted(digits_dir.rglob("*.png"))[:3]
    with decoded_once():
        first = [_loader(48)(f) for f in files]
        again = [_loader(48)(f) for f in files]  # another candidate at the same size
        other = [_loader(40)(f) for f in files]  # another preprocessing: decoded anew
    assert decodes == files + files
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert other[0].shape[-1] == 40 and first[0].shape[-1] == 48
    decodes.clear()
    for _ in range(2):
        [_loader(48)(f) for f in files]  # outside the scope: every call decodes
    assert decodes == files + files


def test_decoded_once_keeps_no_more_than_its_budget(digits_dir: Path, decodes: list[Path]) -> None:
    files = sorted(digits_dir.rglob("*.png"))[:3]
    one = 3 * 48 * 48 * 4  # bytes of one preprocessed image
    with decoded_once(max_bytes=2 * one):
        for _ in range(2):
            [_loader(48)(f) for f in files]
    assert decodes == files + files[2:]  # the third image did not fit: decoded each time
