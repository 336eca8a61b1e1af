"""``graft cache clear`` deletes only what the store wrote; --cache-dir and GRAFT_CACHE_DIR agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graft.cli import main
from graft.data.digits import write_digits
from graft.errors import ConfigError
from graft.measure.features import MARKER, FeatureStore, store_root
from graft.testing import tiny_backbone
from graft.workflows.measure import cache_clear, cache_info


def _extract(store: FeatureStore, folder: Path) -> None:
    import torch

    paths = sorted(folder.rglob("*.png"))[:6]
    store.extract(
        tiny_backbone(),
        paths,
        load=lambda p: torch.rand(3, 32, 32),
        transform_id="t",
        progress=False,
    )


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("img") / "digits", per_class=1, seed=0)


def test_clear_refuses_a_folder_that_is_not_a_store(tmp_path: Path, capsys: object) -> None:
    """A folder with photos/ and thesis/ (its features/ too) loses nothing."""
    for folder in (tmp_path, tmp_path / "features"):
        for name in ("photos", "thesis"):
            (folder / name).mkdir(parents=True)
            (folder / name / "a.txt").write_text("precious")
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 2
    with pytest.raises(ConfigError, match="not a graft feature store"):
        FeatureStore(tmp_path).clear()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("a.txt")) == [
        "features/photos/a.txt",
        "features/thesis/a.txt",
        "photos/a.txt",
        "thesis/a.txt",
    ]


def test_clear_deletes_only_entries_the_store_wrote(tmp_path: Path, images: Path) -> None:
    store = FeatureStore.for_cache_dir(tmp_path)
    _extract(store, images)
    assert (store.root / MARKER).is_file()
    (store.root / "photos").mkdir()
    (store.root / "photos" / "cat.jpg").write_bytes(b"cat")
    (store.root / "0123456789abcdef-0123456789abcdef").mkdir()  # an entry's name, no meta.json
    assert cache_clear(cache_dir=str(tmp_path)) > 0
    left = sorted(p.name for p in store.root.iterdir())
    assert left == [MARKER, "0123456789abcdef-0123456789abcdef", "photos"]
    assert cache_info(cache_dir=str(tmp_path)) == []


def test_cache_dir_flag_and_env_name_the_same_store(
    tmp_path: Path,
    images: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Features stored through GRAFT_CACHE_DIR are found with --cache-dir of the same folder."""
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    _extract(FeatureStore(), images)
    assert store_root(str(tmp_path)) == FeatureStore().root == tmp_path / "features"
    monkeypatch.delenv("GRAFT_CACHE_DIR")
    entries = cache_info(cache_dir=str(tmp_path))
    assert len(entries) == 1 and entries[0]["rows"] == 6
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    assert "1 entries" in capsys.readouterr().out
    meta = json.loads((Path(entries[0]["path"]) / "meta.json").read_text())
    assert meta["dim"] == entries[0]["dim"]


def test_onnx_exports_live_in_the_cache_dir_and_clear_with_it(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--cache-dir DIR``: the pass's ONNX export goes to DIR/engines, not $GRAFT_CACHE_DIR;
    clearing all removes it and leaves a user's file there alone."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GRAFT_ENGINE", "onnxruntime")
    store = FeatureStore.for_cache_dir(tmp_path / "mine")
    _extract(store, images)
    exports = sorted((tmp_path / "mine" / "engines").iterdir())
    assert [p.suffix for p in exports] == [".json", ".onnx"]
    assert not (tmp_path / "elsewhere").exists()
    (tmp_path / "mine" / "engines" / "notes.txt").write_text("mine")
    exported = sum(p.stat().st_size for p in exports)
    assert cache_clear(cache_dir=str(tmp_path / "mine")) > exported
    assert [p.name for p in (tmp_path / "mine" / "engines").iterdir()] == ["notes.txt"]
