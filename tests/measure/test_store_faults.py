"""The feature store under real faults: a read-only store, a full disk, a shard overwritten."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.errors import ConfigError
from graft.measure.features import FeatureStore

SRC = Path(__file__).resolve().parents[2] / "src"
TID = "resize32-unit"

# Run as the unprivileged user "nobody": root would write through any permission bit.
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

SCRIPT = """
import sys
sys.path.insert(0, {src!r})
import numpy as np, timm, torch
from PIL import Image
from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.measure.features import FeatureStore

def load(path):
    img = Image.open(path).convert("RGB").resize((32, 32))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)

torch.manual_seed(0)
model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
spec = BackboneSpec(name="tiny", arch="resnet10t", source="timm", pretrained=False)
backbone = Backbone(model, spec, DataConfig(input_size=(3, 32, 32)), groups=[])
files = sys.argv[2:]
feats = FeatureStore(sys.argv[1]).extract(
    backbone, files, load=load, transform_id={tid!r}, shard_size=4, progress=False
)
print(feats.computed, feats.reused, float(np.abs(feats.to_array()).sum()))
"""


def tiny_backbone() -> Backbone:
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    spec = BackboneSpec(name="tiny", arch="resnet10t", source="timm", pretrained=False)
    return Backbone(model, spec, DataConfig(input_size=(3, 32, 32)), groups=[])


def load(path: Path) -> torch.Tensor:
    img = Image.open(path).convert("RGB").resize((32, 32))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every user can read (pytest's own temporary folders are root-only)."""
    root = Path(tempfile.mkdtemp(prefix="graft-shared-"))
    root.chmod(0o755)
    img = root / "img"
    img.mkdir()
    from sklearn.datasets import load_digits

    digits = (load_digits().images[:10] * (255 / 16)).astype(np.uint8)
    for i, pixels in enumerate(digits):
        Image.fromarray(pixels).resize((16, 16)).save(img / f"{i:02d}.png")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _extract(
    store: Path, files: list[Path], *, user: list[str]
) -> subprocess.CompletedProcess[str]:
    script = SCRIPT.format(src=str(SRC), tid=TID)
    return subprocess.run(
        [*user, sys.executable, "-c", script, str(store), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HOME": "/tmp", "OMP_NUM_THREADS": "1"},
    )


def _needs_root_and_setpriv() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a process as an unprivileged user")


def test_a_read_only_store_serves_every_entry_it_holds(shared: Path) -> None:
    _needs_root_and_setpriv()
    files = sorted((shared / "img").iterdir())
    store = shared / "store"
    filled = _extract(store, files, user=[])  # the owner fills it (with the default umask)
    assert filled.returncode == 0, filled.stderr
    assert filled.stdout.split()[:2] == ["10", "0"]
    # Another user reads the shared store: it can neither write nor touch it.
    again = _extract(store, files, user=NOBODY)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["0", "10", filled.stdout.split()[2]]


def test_a_read_only_store_that_must_grow_says_what_to_do(shared: Path) -> None:
    _needs_root_and_setpriv()
    files = sorted((shared / "img").iterdir())
    store = shared / "store"
    assert _extract(store, files[:4], user=[]).returncode == 0
    grow = _extract(store, files, user=NOBODY)
    assert grow.returncode == 1
    last = grow.stderr.strip().splitlines()[-1]
    assert "ConfigError" in last and "is read-only" in last and "--no-use-cache" in last, last


def test_fit_on_a_read_only_store_is_one_line(shared: Path, digits_dir: Path) -> None:
    _needs_root_and_setpriv()
    data = shared / "digits"
    shutil.copytree(digits_dir, data)
    (shared / "store").mkdir()  # root's, 0755: nobody cannot write it
    runs = shared / "runs"
    runs.mkdir(mode=0o777)
    runs.chmod(0o777)
    command = [
        *NOBODY,
        *(sys.executable, "-m", "graft.cli", "fit", str(data)),
        *("--strategy", "feature-extraction", "--epochs", "1", "--no-progress"),
        *("--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"),
        *("--cache-dir", str(shared / "store"), "--out", str(runs / "model")),
    ]
    env = {**os.environ, "PYTHONPATH": str(SRC), "HOME": "/tmp", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "is read-only" in line and "--no-use-cache" in line, line


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs: a real full file system."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_a_full_store_says_what_to_do(tiny_disk: Path, shared: Path) -> None:
    files = sorted((shared / "img").iterdir())
    with pytest.raises(ConfigError, match=r"is full .*--no-use-cache"):
        FeatureStore(tiny_disk).extract(
            tiny_backbone(), files, load=load, transform_id=TID, shard_size=4, progress=False
        )


def test_a_shard_overwritten_in_place_is_detected_and_recomputed(
    shared: Path, tmp_path: Path
) -> None:
    files = sorted((shared / "img").iterdir())
    store = FeatureStore(tmp_path / "store")
    backbone = tiny_backbone()
    want = store.extract(backbone, files, load=load, transform_id=TID, shard_size=4).to_array()
    shard = sorted(next(store.root.iterdir()).glob("shard-*.npy"))[0]
    size, before = shard.stat().st_size, np.load(shard)
    np.save(shard, np.full_like(before, np.nan))  # same shape, same size, other bytes
    assert shard.stat().st_size == size
    again = store.extract(backbone, files, load=load, transform_id=TID, shard_size=4)
    assert again.computed == len(before) and np.isfinite(again.to_array()).all()
    np.testing.assert_allclose(again.to_array(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.load(shard), before)  # the shard was written again
