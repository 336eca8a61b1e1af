"""Target images without labels: real digits copied into one flat folder (no class folders)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def flat_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 handwritten digits in one folder: nothing in it names a class."""
    from graft.data.digits import write_digits

    labeled = write_digits(tmp_path_factory.mktemp("t") / "digits", per_class=4, seed=1)
    flat = tmp_path_factory.mktemp("flat")
    for i, path in enumerate(sorted(labeled.rglob("*.png"))):
        shutil.copy(path, flat / f"{i:03d}.png")
    return flat
