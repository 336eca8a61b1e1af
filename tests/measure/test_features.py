"""FeatureStore: computed once per file content, resumable, order-preserving, safe to share."""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.errors import ConfigError, DataError
from graft.measure.features import Features, FeatureStore, content_key, default_root

TID = "resize32-unit"


def tiny_backbone(seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    spec = BackboneSpec(name="tiny", arch="resnet10t", source="timm", pretrained=False)
    return Backbone(model, spec, DataConfig(input_size=(3, 32, 32)), groups=[])


def load(path: Path) -> torch.Tensor:
    img = Image.open(path).convert("RGB").resize((32, 32), Image.Resampling.NEAREST)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


@functools.cache
def digit_images() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images * (255 / 16)).astype(np.uint8)


def write_digit(path: Path, index: int) -> Path:
    pixels = digit_images()[index]
    Image.fromarray(pixels).resize((16, 16), Image.Resampling.NEAREST).save(path)
    return path


@pytest.fixture(scope="module")
def backbone() -> Backbone:
    return tiny_backbone()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    (tmp_path / "img").mkdir()
    return [write_digit(tmp_path / "img" / f"{i:02d}.png", i) for i in range(10)]


def reference(backbone: Backbone, paths: list[Path]) -> np.ndarray:
    backbone.eval()
    with torch.no_grad():
        return backbone(torch.stack([load(p) for p in paths])).numpy()


def extract(store: FeatureStore, backbone: Backbone, paths: list[Path], **kw: object) -> Features:
    return store.extract(backbone, paths, load=load, transform_id=TID, progress=False, **kw)  # type: ignore[arg-type]


def close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_rows_are_the_backbone_output_and_second_call_runs_no_forward(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    store = FeatureStore(tmp_path / "store")
    backbone.train()
    first = extract(store, backbone, files, batch_size=4)
    assert backbone.training  # mode restored after the pass
    assert (first.computed, first.reused, len(first), first.dim) == (10, 0, 10, 512)
    close(first.to_array(), reference(backbone, files))

    calls: list[int] = []
    hook = backbone.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    try:
        second = extract(store, backbone, files)
    finally:
        hook.remove()
    assert (second.computed, second.reused, calls) == (0, 10, [])
    np.testing.assert_array_equal(second.to_array(), first.to_array())


def test_only_new_files_are_computed(tmp_path: Path, backbone: Backbone, files: list[Path]) -> None:
    store = FeatureStore(tmp_path / "store")
    extract(store, backbone, files[:6])
    feats = extract(store, backbone, files)
    assert (feats.computed, feats.reused) == (4, 6)
    close(feats.to_array(), reference(backbone, files))


def test_changed_content_recomputes_only_that_file(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    store = FeatureStore(tmp_path / "store")
    before = extract(store, backbone, files).to_array()
    write_digit(files[3], 42)
    # The in-process hash memo keys on timestamps; make sure this edit is visibly later.
    stamp = files[3].stat().st_mtime_ns + 10**9
    os.utime(files[3], ns=(stamp, stamp))
    after = extract(store, backbone, files)
    assert (after.computed, after.reused) == (1, 9)
    rows = after.to_array()
    close(rows[3], reference(backbone, [files[3]])[0])
    assert not np.allclose(rows[3], before[3])
    np.testing.assert_array_equal(np.delete(rows, 3, 0), np.delete(before, 3, 0))


class FailAfter:
    """A loader that raises after ``limit`` files, like a crash or Ctrl-C mid-extraction."""

    def __init__(self, limit: int) -> None:
        self.limit, self.calls = limit, 0

    def __call__(self, path: Path) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.limit:
            raise RuntimeError("simulated crash")
        return load(path)


def test_interrupted_extraction_resumes_from_finished_shards(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    store = FeatureStore(tmp_path / "store")
    with pytest.raises(DataError, match=r"07\.png: cannot load .*simulated crash"):
        store.extract(
            backbone, files, load=FailAfter(7), transform_id=TID, batch_size=2, shard_size=3
        )
    (entry,) = [p for p in store.root.iterdir() if p.is_dir()]
    assert len(list(entry.glob("shard-*.json"))) == 2  # rows 0-5 persisted; 6 was in the buffer
    resumed = extract(store, backbone, files, batch_size=2, shard_size=3)
    assert (resumed.computed, resumed.reused) == (4, 6)
    fresh = extract(FeatureStore(tmp_path / "fresh"), backbone, files)
    close(resumed.to_array(), fresh.to_array())


def test_worker_processes_give_the_same_rows(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    store = FeatureStore(tmp_path / "store")
    feats = store.extract(
        backbone, files[:4], load=load, transform_id=TID, num_workers=1, batch_size=3
    )
    assert feats.computed == 4
    close(feats.to_array(), reference(backbone, files[:4]))


def test_transform_or_weights_change_makes_a_separate_entry(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    store = FeatureStore(tmp_path / "store")
    a = extract(store, backbone, files[:3])
    b = store.extract(backbone, files[:3], load=load, transform_id="other", progress=False)
    other = tiny_backbone(seed=1)
    c = extract(store, other, files[:3])
    assert (a.computed, b.computed, c.computed) == (3, 3, 3)
    assert not np.allclose(a.to_array(), c.to_array())
    assert len(store.info()) == 3
    with torch.no_grad():
        next(other.parameters()).add_(1.0)  # fine-tuned weights never reuse old features
    assert extract(store, other, files[:3]).computed == 3


def test_damaged_or_incomplete_shards_are_ignored(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    store = FeatureStore(tmp_path / "store")
    want = extract(store, backbone, files, shard_size=4).to_array()
    entry = next(p for p in store.root.iterdir() if p.is_dir())
    sizes = {p: len(json.loads(p.read_text())["keys"]) for p in entry.glob("shard-*.json")}
    assert sorted(sizes.values()) == [2, 4, 4]
    no_json, truncated = (p.with_suffix(".npy") for p, n in sizes.items() if n == 4)
    no_json.with_suffix(".json").unlink()  # crash between the two renames
    truncated.write_bytes(truncated.read_bytes()[:200])  # e.g. a power cut mid-write
    # Orphans from long ago are cleaned; fresh ones might belong to a live writer.
    stale, live = entry / "shard-stale.npy", entry / "shard-live.npy"
    for p in (stale, live):
        p.write_bytes(b"partial")
    os.utime(stale, ns=(0, 0))
    again = extract(store, backbone, files, shard_size=4)
    assert (again.computed, again.reused) == (8, 2)
    close(again.to_array(), want)
    assert not stale.exists() and live.exists()
    # Same keys, same shard name: the recomputed shards replace the broken ones.
    assert sorted(p.name for p in entry.iterdir()) == sorted(
        [live.name, "meta.json"] + [f"{q.stem}{s}" for q in sizes for s in (".json", ".npy")]
    )
    assert np.load(truncated).shape == (4, 512)


def test_order_follows_paths_with_duplicates_and_indexing(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    copy = tmp_path / "copy.png"
    copy.write_bytes(files[1].read_bytes())  # same content, another name: one forward
    paths = [files[3], files[0], files[3], files[1], copy]
    feats = extract(FeatureStore(tmp_path / "store"), backbone, paths, shard_size=2)
    assert (feats.computed, feats.reused, len(feats)) == (3, 0, 5)
    want = reference(backbone, paths)
    rows = feats.to_array()
    close(rows, want)
    np.testing.assert_array_equal(feats[2], rows[2])
    np.testing.assert_array_equal(feats[1:4], rows[1:4])
    np.testing.assert_array_equal(feats[np.array([4, 0, 4])], rows[[4, 0, 4]])
    batches = list(feats.iter_batches(2, indices=[4, 3, 2]))
    assert [len(b) for b in batches] == [2, 1]
    np.testing.assert_array_equal(np.concatenate(batches), rows[[4, 3, 2]])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(feats)).to_array(), rows)


def test_info_and_clear(tmp_path: Path, backbone: Backbone, files: list[Path]) -> None:
    store = FeatureStore(tmp_path / "store")
    extract(store, backbone, files)
    extract(store, tiny_backbone(seed=1), files[:2])
    info = {r["rows"]: r for r in store.info()}
    assert sorted(info) == [2, 10]
    record = info[10]
    assert (record["backbone"], record["arch"], record["transform_id"]) == (
        "tiny",
        "resnet10t",
        TID,
    )
    assert record["identity"] == backbone.identity() and record["bytes"] > 10 * 512 * 4
    assert record["last_used"]
    assert store.clear(backbone.identity()) == record["bytes"]
    assert [r["rows"] for r in store.info()] == [2]
    assert store.clear("nothing-like-this") == 0
    assert store.clear("tiny") > 0 and store.info() == []
    assert extract(store, backbone, files[:1]).computed == 1


def test_user_mistakes_name_the_file_or_argument(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    store = FeatureStore(tmp_path / "store")
    with pytest.raises(DataError, match=r"missing\.png: cannot read"):
        extract(store, backbone, [files[0], tmp_path / "missing.png"])
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(DataError, match=r"bad\.png: cannot load"):
        extract(store, backbone, [tmp_path / "bad.png"])
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        extract(store, backbone, files, batch_size=0)
    assert len(extract(store, backbone, [])) == 0


def test_content_key_and_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "a.bin"
    p.write_bytes(b"abc")
    # sha256("abc"), the FIPS 180-2 test vector
    assert content_key(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "c"))
    assert default_root() == tmp_path / "c" / "features"
    assert FeatureStore().root == tmp_path / "c" / "features"


def _extract_in_child(root: str, paths: list[Path]) -> None:
    feats = extract(FeatureStore(root), tiny_backbone(), paths, batch_size=2, shard_size=2)
    assert len(feats) == len(paths)


def test_two_processes_writing_one_entry_do_not_corrupt_it(
    tmp_path: Path, backbone: Backbone, files: list[Path]
) -> None:
    root = str(tmp_path / "store")
    ctx = multiprocessing.get_context("fork")
    # Overlapping sets in different orders: counted shard names would collide here.
    subsets = (files[:8], files[9:1:-1])
    procs = [ctx.Process(target=_extract_in_child, args=(root, s)) for s in subsets]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    feats = extract(FeatureStore(root), backbone, files)
    assert feats.computed == 0
    close(feats.to_array(), reference(backbone, files))


def test_texts_are_computed_shortest_first_and_returned_in_their_order(tmp_path: Path) -> None:
    """``order``: the pass runs by length (little padding) and the rows keep the items' order."""
    from graft.data.text import text_key
    from graft.testing import tiny_text_backbone
    from graft.training.loaders import TokenLoader

    backbone = tiny_text_backbone(max_length=32)
    texts = [("word " * n).strip() for n in (20, 1, 9, 30, 3, 14, 2, 25)]
    tokens = backbone.encode(texts, warn=False)  # type: ignore[attr-defined]
    lengths = tokens[:, 1].sum(dim=1)
    seen: list[int] = []
    backbone.register_forward_hook(lambda m, a, out: seen.append(int(a[0][:, 1].sum(1).max())))
    args = {
        "keys": [text_key(t) for t in texts], "load": TokenLoader(tokens), "batch_size": 2,
        "transform_id": backbone.text_config.identity, "progress": False,  # type: ignore[attr-defined]
    }  # fmt: skip
    sorted_rows = FeatureStore(tmp_path / "a").extract(
        backbone, list(range(len(texts))), order=lengths.tolist(), **args
    )
    assert seen == sorted(seen) and len(seen) == 4, "batches of two, shortest first"
    plain_rows = FeatureStore(tmp_path / "b").extract(backbone, list(range(len(texts))), **args)
    np.testing.assert_allclose(sorted_rows.to_array(), plain_rows.to_array(), atol=1e-5)
