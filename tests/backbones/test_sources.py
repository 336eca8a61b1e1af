"""Every registered backbone source: build by name, save a model with it, load it back.

The contract test loops over the registry (each source gives a tiny offline example), so a new
source is covered without editing this file. The other tests pin how names resolve: explicit
prefixes, bare names, and saved models found by their files, never by a slash.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import graft
from graft.backbones import (
    SOURCES,
    USAGE,
    create,
    from_spec,
    list_bundled,
    list_sources,
    models_text,
    resolve,
)
from graft.backbones.sources import source_for_spec
from graft.errors import ArtifactError, BackboneError, ConfigError
from graft.model import GraftModel
from graft.tasks import Classification

SRC = Path(__file__).resolve().parents[2] / "src" / "graft"


def _inputs(backbone: graft.GraftModel | torch.nn.Module, config: object) -> torch.Tensor:
    bb = getattr(backbone, "backbone", backbone)
    if getattr(bb, "input_kind", "image") == "text":
        return bb.encode(["a short text", "another, slightly longer text to read"])  # type: ignore[operator]
    c, h, w = config.input_size  # type: ignore[attr-defined]
    return torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("prefix", SOURCES.names())
def test_every_source_builds_saves_and_loads(prefix: str, tmp_path: Path) -> None:
    source = SOURCES.get(prefix)
    torch.manual_seed(0)
    example = source.example(tmp_path)
    bb = create(f"{prefix}:{example.name}", **example.options)
    assert bb.input_kind in source.input_kind.split(", ")
    assert source_for_spec(bb.spec) is source
    assert resolve(example.name)[0] is source  # the bare name (or folder) finds it too
    model = GraftModel(bb, Classification.spec_for(["a", "b", "c"])).eval()
    x = _inputs(model, bb.data_config)
    with torch.no_grad():
        expected = model(x)
        model.save(tmp_path / "model")
        loaded = graft.load(tmp_path / "model")
        assert loaded.backbone.spec.to_dict() == json.loads(json.dumps(bb.spec.to_dict()))
        assert loaded.backbone.group_names == bb.group_names
        torch.testing.assert_close(loaded(x), expected)
        bare = from_spec(bb.spec, load_weights=False)
        assert (bare.num_features, bare.input_kind) == (bb.num_features, bb.input_kind)
        if bb.spec.source != "random":  # the original weights come back from the spec
            rebuilt = from_spec(bb.spec, load_weights=True)
            rebuilt.data_config = bb.data_config
            torch.testing.assert_close(rebuilt(x), bb(x))


def test_unknown_prefix_lists_the_known_ones() -> None:
    with pytest.raises(BackboneError) as e:
        create("tim:resnet18", pretrained=False)
    msg = str(e.value)
    assert "Did you mean 'timm'" in msg
    assert all(p in msg for p in ("bundled", "folder", "graft", "scratch", "timm"))


def test_unknown_names_within_a_source() -> None:
    with pytest.raises(BackboneError, match="scratch networks: small_cnn, small_cnn_gray"):
        create("scratch:small_cnnn", pretrained=False)
    with pytest.raises(BackboneError, match="Did you mean 'efficientnet_lite0'"):
        create("bundled:efficientnet_lite", pretrained=False)


def test_a_slash_does_not_make_a_saved_model(tmp_path: Path) -> None:
    with pytest.raises(BackboneError, match="unknown backbone 'runs/digits'"):
        create("runs/digits", pretrained=False)
    other = tmp_path / "hub-folder"
    other.mkdir()
    (other / "config.json").write_text('{"format": "another-tool"}')
    (other / "model.safetensors").write_bytes(b"")
    with pytest.raises(ArtifactError, match="not a saved graft model"):
        create(str(other))
    with pytest.raises(ArtifactError, match="not a graft model config"):
        create(f"graft:{other}")


def test_folder_named_like_a_backbone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("small_cnn").mkdir()  # an empty folder: the name is still the small CNN's
    assert create("small_cnn", pretrained=False).spec.arch == "small_cnn"
    GraftModel(
        create("small_cnn", pretrained=False, image_size=16), Classification.spec_for(["a", "b"])
    ).save("small_cnn")
    with pytest.raises(ConfigError, match="graft:small_cnn or scratch:small_cnn"):
        create("small_cnn")
    assert create("graft:small_cnn").spec.source == "graft"
    assert create("scratch:small_cnn", pretrained=False).spec.source == "random"


def test_specs_saved_before_prefixes_rebuild() -> None:
    for name, arch in [("small_cnn", "small_cnn"), ("timm:test_efficientnet", "test_efficientnet")]:
        spec = graft.backbones.BackboneSpec(name, arch, "random", pretrained=False)
        assert from_spec(spec, load_weights=False).spec == spec


def test_models_listing_names_every_source() -> None:
    text = models_text()
    for s in list_sources():
        assert f"{s['prefix']}:" in text and s["input_kind"] in text
    assert all(e["name"] in text for e in list_bundled())
    assert "timm:<name>" in USAGE and "graft:" in USAGE


def _graft_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):  # deferred imports included
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "graft" or n.startswith("graft.")}


def test_backbones_import_only_foundations_and_themselves() -> None:
    allowed = ("graft._registry", "graft.errors", "graft.io", "graft.config", "graft.backbones")
    for path in sorted((SRC / "backbones").glob("*.py")):
        bad = {n for n in _graft_imports(path) if not n.startswith(allowed)}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_building_by_name_loads_nothing_above_backbones() -> None:
    code = (
        "import sys; from graft.backbones import create; "
        "create('small_cnn', pretrained=False); create('timm:test_efficientnet', pretrained=False); "
        "print(sorted(m for m in sys.modules if m.startswith('graft.') "
        "and not m.startswith(('graft.backbones', 'graft.errors', 'graft._registry', 'graft.config', 'graft.io'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_timm_folder_brings_its_preprocessing(tmp_path: Path) -> None:
    folder = Path(SOURCES.get("folder").example(tmp_path).name)
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"].update(mean=[0.5] * 3, std=[0.25] * 3, input_size=[3, 40, 40])
    (folder / "config.json").write_text(json.dumps(config))
    bb = create(str(folder))
    assert (bb.data_config.mean, bb.data_config.std) == ((0.5,) * 3, (0.25,) * 3)
    assert bb.data_config.input_size == (3, 40, 40) and bb.source_head is not None
    assert from_spec(bb.spec, load_weights=False).data_config == bb.data_config
    with pytest.raises(ConfigError, match="brings its own weights"):
        create(f"folder:{folder}", pretrained=False)
