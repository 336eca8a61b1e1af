"""DANN: the discriminator learns separable domains; the features get the reversed gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graft.adapt import DomainAdversarialLoss, grl_coeff


def _domains(n: int = 64, shift: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    source = torch.randn(n, 8, generator=gen)
    target = torch.randn(n // 2, 8, generator=gen)
    target[:, 0] += shift
    return source, target


def test_discriminator_separates_separable_domains():
    torch.manual_seed(0)
    source, target = _domains()
    dann = DomainAdversarialLoss(8, hidden=32, dropout=0.0)
    _, before = dann.align(source, target, 1.0)
    opt = torch.optim.Adam(dann.parameters(), lr=1e-2)
    for _ in range(100):
        loss, _ = dann.align(source, target, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dann.eval()
    _, metrics = dann.align(source, target, 1.0)
    assert metrics["domain_acc"] > 0.95 > before["domain_acc"]
    assert metrics["domain_loss"] < 0.2
    assert metrics["grl_coeff"] == pytest.approx(grl_coeff(1.0))


@pytest.mark.parametrize("progress", [0.1, 0.5, 1.0])
def test_features_receive_the_opposite_gradient(progress):
    source, target = _domains(16)
    source.requires_grad_(True)
    target.requires_grad_(True)
    dann = DomainAdversarialLoss(8, hidden=16, dropout=0.0, weight=2.0)
    loss, _ = dann.align(source, target, progress)
    g_s, g_t = torch.autograd.grad(loss, (source, target))
    # The same loss computed without reversal: what the discriminator itself descends.
    logits = dann.discriminator(torch.cat([source, target])).squeeze(1)
    bce_s = F.binary_cross_entropy_with_logits(logits[:16], torch.ones(16))
    bce_t = F.binary_cross_entropy_with_logits(logits[16:], torch.zeros(8))
    plain = 2.0 * 0.5 * (bce_s + bce_t)
    assert loss.item() == pytest.approx(plain.item(), rel=1e-6)
    p_s, p_t = torch.autograd.grad(plain, (source, target))
    coeff = grl_coeff(progress)
    assert torch.allclose(g_s, -coeff * p_s, atol=1e-7)
    assert torch.allclose(g_t, -coeff * p_t, atol=1e-7)


def test_discriminator_gradient_is_not_reversed():
    source, target = _domains(16)
    dann = DomainAdversarialLoss(8, hidden=16, dropout=0.0)
    loss, _ = dann.align(source, target, 1.0)
    loss.backward()
    grads = [p.grad.clone() for p in dann.parameters()]
    dann.zero_grad()
    logits = dann.discriminator(torch.cat([source, target])).squeeze(1)
    labels = torch.cat([torch.ones(16), torch.zeros(8)])
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    (0.5 * (bce[:16].mean() + bce[16:].mean())).backward()
    for g, p in zip(grads, dann.parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-7)


def test_shape_errors_name_the_problem():
    dann = DomainAdversarialLoss(8, hidden=4)
    with pytest.raises(ValueError, match=r"same width.*\(4, 8\) and \(4, 7\)"):
        dann.align(torch.zeros(4, 8), torch.zeros(4, 7), 0.0)
