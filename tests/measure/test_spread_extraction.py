"""Extraction spread over processes: two CPU processes (a gloo group, as under torchrun) each
compute about half of the missing files, and the store ends with the rows one process writes.

The test process is rank 0 and a fresh Python process rank 1 (one start-up instead of two)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch.distributed as dist

from graft.backbones.engines import equivalent
from graft.data import build_transform, load_image
from graft.measure.features import FeatureStore, content_keys
from graft.testing import tiny_backbone

SRC = Path(__file__).resolve().parents[2] / "src"

WORKER = """
import sys
from pathlib import Path
import numpy as np
import torch
import torch.distributed as dist
from graft.data import build_transform, load_image
from graft.measure.features import FeatureStore, content_keys
from graft.testing import tiny_backbone

rank, rendezvous, data, store, out = int(sys.argv[1]), *sys.argv[2:]
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
backbone = tiny_backbone(image_size=32)
transform = build_transform(backbone.data_config)
files = sorted(Path(data).rglob("*.png"))
feats = FeatureStore(store).extract(
    backbone, files, load=lambda p: transform(load_image(p)), transform_id="t32",
    batch_size=8, shard_size=16, progress=False, spread=True,
)
np.save(out, feats.to_array())
print(feats.computed, feats.reused)
dist.destroy_process_group()
"""


def _rows(store: Path) -> dict[str, np.ndarray]:
    """Content key -> row, over every shard of the store's one entry."""
    import json

    rows = {}
    for listed in store.glob("*/shard-*.json"):
        array = np.load(listed.with_suffix(".npy"))
        for key, row in zip(json.loads(listed.read_text())["keys"], array, strict=True):
            rows[key] = row
    return rows


def test_two_processes_fill_the_store_as_one_does(digits_dir: Path, tmp_path: Path) -> None:
    backbone = tiny_backbone(image_size=32)
    transform = build_transform(backbone.data_config)
    files = sorted(digits_dir.rglob("*.png"))
    single = FeatureStore(tmp_path / "single").extract(
        backbone, files, load=lambda p: transform(load_image(p)), transform_id="t32",
        batch_size=8, shard_size=16, progress=False, spread=True,  # no group: one process
    )  # fmt: skip
    distinct = len(set(content_keys(files)))
    assert single.computed == distinct

    # This process is rank 0 of a two-process gloo group; a fresh Python process is rank 1.
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rendezvous, spread = tmp_path / "rdv", tmp_path / "spread"
    args = [str(rendezvous), str(digits_dir), str(spread), str(tmp_path / "rank1.npy")]
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER, "1", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        dist.init_process_group(
            "gloo", init_method=f"file://{rendezvous}", rank=0, world_size=2,
            timeout=timedelta(seconds=240),
        )  # fmt: skip
        try:
            mine = FeatureStore(spread).extract(
                backbone, files, load=lambda p: transform(load_image(p)), transform_id="t32",
                batch_size=8, shard_size=16, progress=False, spread=True,
            )  # fmt: skip
        finally:
            dist.destroy_process_group()
        out, err = child.communicate(timeout=240)
    finally:
        child.kill()
    assert child.returncode == 0, err[-2000:]
    computed = [mine.computed, int(out.split()[0])]
    assert sum(computed) == distinct and min(computed) >= distinct // 2  # about a half each

    arrays = [mine.to_array(), np.load(tmp_path / "rank1.npy")]
    reference = single.to_array()
    for got in arrays:
        assert equivalent(got, reference), float(np.abs(got - reference).max())
    one, two = _rows(tmp_path / "single"), _rows(tmp_path / "spread")
    assert one.keys() == two.keys()
    assert all(equivalent(two[k], one[k]) for k in one)
