"""Offline is detected at once: no hub call (and none of its retries) when it cannot answer."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from graft.backbones import create, timm_source
from graft.errors import BackboneError


@pytest.fixture
def no_hub_call(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """timm.create_model(pretrained=True) is recorded, and fails as a hub without network."""
    import timm

    calls: list[Any] = []
    real = timm.create_model

    def create_model(name: str, pretrained: bool = False, **kw: Any) -> Any:
        if pretrained:
            calls.append(name)
            raise OSError("hub unreachable after retries")
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", create_model)
    monkeypatch.setattr(timm_source, "_cached", lambda cfg: False)  # no weights on disk
    return calls


def test_hf_hub_offline_fails_at_once_with_the_fixes(
    monkeypatch: pytest.MonkeyPatch, no_hub_call: list[Any]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="HF_HUB_OFFLINE is set") as err:
        create("timm:resnet18")
    assert "--weights PATH" in str(err.value) and "--no-pretrained" in str(err.value)
    assert no_hub_call == [], "the hub client was never called"


def test_an_unreachable_hub_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, no_hub_call: list[Any]
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    tried: list[tuple[Any, float | None]] = []

    def refuse(address: Any, timeout: float | None = None, *a: Any, **k: Any) -> Any:
        tried.append((address, timeout))
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(BackboneError, match=r"huggingface\.co:443 unreachable") as err:
        create("timm:resnet18")
    assert "--weights PATH" in str(err.value)
    assert tried == [(("huggingface.co", 443), timm_source.CONNECT_TIMEOUT)], "one try, short"
    assert timm_source.CONNECT_TIMEOUT <= 1.0
    assert no_hub_call == []


def test_a_reachable_hub_is_asked(monkeypatch: pytest.MonkeyPatch, no_hub_call: list[Any]) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    class _Open:
        def close(self) -> None:
            pass

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: _Open())
    with pytest.raises(BackboneError, match="could not fetch pretrained weights"):
        create("timm:resnet18")
    assert no_hub_call == ["resnet18"]


def test_cached_weights_need_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg("resnet18")
    monkeypatch.setattr(
        "huggingface_hub.try_to_load_from_cache", lambda repo, name, **k: "/some/model.safetensors"
    )
    monkeypatch.setattr(socket, "create_connection", pytest.fail)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    timm_source.check_reachable(cfg, "resnet18")  # no error, no connection tried
