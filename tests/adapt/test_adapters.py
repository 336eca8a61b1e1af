"""Contract tests over every registered adapter, and the registry's factory."""

from __future__ import annotations

import json

import pytest
import torch

from graft._registry import UnknownNameError
from graft.adapt import ADAPTERS, STAGES, create_adapter
from graft.errors import ConfigError

ALIGN = [n for n, cls in ADAPTERS.items() if cls.stage == "align"]
PRETRAIN = [n for n, cls in ADAPTERS.items() if cls.stage == "pretrain"]


def test_every_adapter_declares_a_known_stage():
    assert {cls.stage for _, cls in ADAPTERS.items()} <= set(STAGES)
    assert {"dann", "coral", "mmd"} <= set(ALIGN) and "rotation" in PRETRAIN


@pytest.mark.parametrize("name", ALIGN)
def test_alignment_adapter_contract(name):
    adapter = create_adapter(name, 6)
    gen = torch.Generator().manual_seed(0)
    source = torch.randn(10, 6, generator=gen).requires_grad_(True)
    target = (torch.randn(7, 6, generator=gen) + 1.0).requires_grad_(True)  # unequal sizes
    loss, metrics = adapter.align(source, target, 0.5)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert metrics and all(isinstance(v, float) for v in metrics.values())
    g_s, g_t = torch.autograd.grad(loss, (source, target))
    assert g_s.abs().sum() > 0 and g_t.abs().sum() > 0
    json.dumps(adapter.options())
    assert adapter.options()["feature_dim"] == 6


@pytest.mark.parametrize("name", ALIGN)
def test_weight_scales_the_loss(name):
    torch.manual_seed(0)
    source, target = torch.randn(8, 4), torch.randn(8, 4) + 1.0
    one = create_adapter(name, 4, weight=1.0).eval()
    three = create_adapter(name, 4, weight=3.0).eval()
    three.load_state_dict(one.state_dict())
    assert three.align(source, target, 1.0)[0].item() == pytest.approx(
        3.0 * one.align(source, target, 1.0)[0].item(), rel=1e-6
    )
    with pytest.raises(ConfigError, match="weight=-1"):
        create_adapter(name, 4, weight=-1.0)


@pytest.mark.parametrize("name", PRETRAIN)
def test_pretrain_adapters_refuse_to_be_a_loss(name):
    adapter = create_adapter(name, 4)
    assert callable(getattr(adapter, "pretrain", None))
    with pytest.raises(ConfigError, match="pre-training"):
        adapter.align(torch.zeros(2, 4), torch.zeros(2, 4), 0.0)


def test_create_adapter_errors():
    with pytest.raises(UnknownNameError, match="dann"):
        create_adapter("dan", 4)
    with pytest.raises(ConfigError, match=r"no option hidden.*kernel_mul"):
        create_adapter("mmd", 4, hidden=3)
    with pytest.raises(ConfigError, match="estimator"):
        create_adapter("mmd", 4, estimator="cubic")
    assert create_adapter("DANN", 4, hidden=None).options()["hidden"] == 1024
