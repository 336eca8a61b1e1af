"""create/from_spec: local weights, random init, hub failures and unknown names (all offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from safetensors.torch import save_file

from graft.backbones import Backbone, create, from_spec
from graft.errors import BackboneError, ConfigError

ARCH = "timm:test_efficientnet"


def _trained(seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    return create(ARCH, pretrained=False)


@pytest.fixture(scope="module")
def source() -> Backbone:
    return _trained()


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "wrapped_pt"])
def test_local_weights_round_trip(source: Backbone, tmp_path: Path, fmt: str) -> None:
    state = source.model.state_dict()
    if fmt == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "pt":
        path = tmp_path / "w.pt"
        torch.save(state, path)
    else:
        path = tmp_path / "w.pth"
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    loaded = create(ARCH, weights=path)
    assert loaded.identity() == source.identity()
    assert (loaded.spec.source, loaded.spec.weights) == ("local", str(path.resolve()))
    assert loaded.spec.weights_sha256 and len(loaded.spec.weights_sha256) == 64
    assert loaded.source_head is not None
    rebuilt = from_spec(loaded.spec, load_weights=True)
    assert rebuilt.identity() == source.identity()


def test_graft_backbone_state_dict_prefix_is_accepted(source: Backbone, tmp_path: Path) -> None:
    path = tmp_path / "bb.pt"
    torch.save(source.state_dict(), path)  # keys start with "model."
    assert create(ARCH, weights=path).identity() == source.identity()


def test_other_classifier_size_is_kept(source: Backbone, tmp_path: Path) -> None:
    state = dict(source.model.state_dict())
    state["classifier.weight"] = torch.randn(7, source.num_features)
    state["classifier.bias"] = torch.zeros(7)
    torch.save(state, tmp_path / "seven.pt")
    bb = create(ARCH, weights=tmp_path / "seven.pt")
    assert bb.spec.kwargs["num_classes"] == 7
    assert bb.source_logits(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    assert from_spec(bb.spec, load_weights=False).source_head is not None


def test_file_without_classifier_gives_no_source_head(source: Backbone, tmp_path: Path) -> None:
    state = {k: v for k, v in source.model.state_dict().items() if not k.startswith("classifier")}
    torch.save(state, tmp_path / "headless.pt")
    bb = create(ARCH, weights=tmp_path / "headless.pt")
    assert bb.source_head is None and bb.spec.kwargs["num_classes"] == 0
    with torch.no_grad():
        assert bb(torch.randn(1, 3, 32, 32)).shape == (1, source.num_features)


def test_weights_for_another_architecture(source: Backbone, tmp_path: Path) -> None:
    path = tmp_path / "effnet.safetensors"
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, str(path))
    with pytest.raises(BackboneError, match=r"effnet\.safetensors.*'resnet10t'.*missing") as e:
        create("resnet10t", weights=path)
    assert "conv1.0.weight" in str(e.value)


def test_shape_mismatch_names_the_key(source: Backbone, tmp_path: Path) -> None:
    state = dict(source.model.state_dict())
    state["conv_stem.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(
        BackboneError, match=r"bad\.pt.*shape \(1\): conv_stem\.weight \(1, 1, 1, 1\)"
    ):
        create(ARCH, weights=tmp_path / "bad.pt")


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "not found"), (b"not a checkpoint", "cannot read"), ({"a": 1}, "no tensors")],
)
def test_unreadable_weights(tmp_path: Path, content: Any, match: str) -> None:
    path = tmp_path / "w.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(BackboneError, match=match):
        create(ARCH, weights=path)


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "obj": Path("x")}, path)
    with pytest.raises(BackboneError, match=r"evil\.pt: cannot read"):
        create(ARCH, weights=path)


def test_changed_local_file_is_detected(source: Backbone, tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(source.model.state_dict(), path)
    spec = create(ARCH, weights=path).spec
    torch.save(_trained(seed=5).model.state_dict(), path)
    with pytest.raises(BackboneError, match="weights changed"):
        from_spec(spec, load_weights=True)


def test_random_init_spec_and_rebuild() -> None:
    bb = create(ARCH, pretrained=False, image_size=48)
    assert (bb.spec.source, bb.spec.pretrained, bb.spec.name) == (
        "random",
        False,
        "timm:test_efficientnet",
    )
    assert bb.data_config.input_size == (3, 48, 48)
    again = from_spec(bb.spec, load_weights=False)
    assert again.group_names == bb.group_names
    assert again.num_features == bb.num_features


def test_identity_changes_with_weights(source: Backbone) -> None:
    other = _trained()
    assert other.identity() == source.identity()
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    assert other.identity() != source.identity()


def test_pretrained_timm_fetch_failure_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    real = timm.create_model

    def offline(name: str, pretrained: bool = False, **kw: Any) -> Any:
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(BackboneError) as e:
        create("timm:test_efficientnet")
    msg = str(e.value)
    assert "could not fetch" in msg and "--weights PATH" in msg
    assert "efficientnet_lite0" in msg and "--no-pretrained" in msg


def test_arch_without_pretrained_weights_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import timm.models

    monkeypatch.setattr(timm.models, "get_pretrained_cfg", lambda name: None)
    with pytest.raises(BackboneError, match=r"no pretrained weights.*--weights"):
        create("resnet10t")


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("resnet5O", "resnet50"), ("timm:efficientnet_lite", "efficientnet_lite0")],
)
def test_unknown_name_suggests_close_timm_models(name: str, suggestion: str) -> None:
    with pytest.raises(BackboneError, match="unknown backbone") as e:
        create(name, pretrained=False)
    assert suggestion in str(e.value) and "Bundled (offline): efficientnet_lite0" in str(e.value)


def test_conflicting_options() -> None:
    with pytest.raises(ConfigError, match="--no-pretrained"):
        create(ARCH, pretrained=False, weights="w.pt")
    with pytest.raises(ConfigError, match="--image-size"):
        create(ARCH, pretrained=False, image_size=4)
