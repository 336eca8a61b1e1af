"""Extraction spread over processes: two CPU processes (a gloo group, as under torchrun) each
compute about half of the missing files, and the store ends with the rows one process writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

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

    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rendezvous, spread = str(tmp_path / "rdv"), str(tmp_path / "spread")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(r),
                rendezvous,
                str(digits_dir),
                spread,
                str(tmp_path / f"rank{r}.npy"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-2000:]
    computed = [int(out.split()[0]) for out, _ in outputs]
    assert (
        sum(computed) == distinct and min(computed) >= distinct // 2
    )  # a half each  # a half each

    reference = single.to_array()
    for r in range(2):
        got = np.load(tmp_path / f"rank{r}.npy")
        assert equivalent(got, reference), float(np.abs(got - reference).max())
    one, two = _rows(tmp_path / "single"), _rows(tmp_path / "spread")
    assert one.keys() == two.keys()
    assert all(equivalent(two[k], one[k]) for k in one)
