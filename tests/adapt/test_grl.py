"""Gradient reversal: exact negated, scaled gradients and the warm-start schedule."""

from __future__ import annotations

import math

import pytest
import torch

from graft.adapt import GradientReversal, WarmStartGRL, grl_coeff, reverse_gradient


@pytest.mark.parametrize("coeff", [0.0, 0.3, 1.0, 2.5])
def test_reversal_negates_and_scales_gradients(coeff):
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    w = torch.randn(3, 2, generator=torch.Generator().manual_seed(1))
    (plain,) = torch.autograd.grad((torch.tanh(x @ w) ** 2).sum(), x)
    y = GradientReversal(coeff)(x)
    assert torch.equal(y, x)
    (reversed_,) = torch.autograd.grad((torch.tanh(y @ w) ** 2).sum(), x)
    assert torch.allclose(reversed_, -coeff * plain, rtol=0, atol=1e-7)


def test_reversal_passes_gradients_of_later_layers_unchanged():
    lin = torch.nn.Linear(3, 1)
    x = torch.randn(5, 3)
    lin(reverse_gradient(x, 0.7)).sum().backward()
    reference = torch.nn.Linear(3, 1)
    reference.load_state_dict(lin.state_dict())
    reference(x).sum().backward()
    assert torch.equal(lin.weight.grad, reference.weight.grad)


def test_schedule_values():
    assert grl_coeff(0.0) == 0.0
    assert grl_coeff(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.98661
    assert grl_coeff(1.0) == pytest.approx(0.9999092, abs=1e-7)
    assert grl_coeff(0.5, max_coeff=0.1) == pytest.approx(0.098661, abs=1e-6)
    assert grl_coeff(-1.0) == 0.0 and grl_coeff(2.0) == grl_coeff(1.0)
    ramp = [grl_coeff(p / 10) for p in range(11)]
    assert ramp == sorted(ramp)


def test_warm_start_layer_uses_the_schedule():
    x = torch.ones(2, 2, requires_grad=True)
    layer = WarmStartGRL(max_coeff=2.0)
    layer(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, 2), -2.0 * grl_coeff(0.5)))
    assert layer.coeff(0.0) == 0.0
