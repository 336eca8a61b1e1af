"""EWC: the Fisher (reference values, importance, sampling) and the penalty."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graft.errors import ConfigError
from graft.protect import EWC, fisher_diagonal
from graft.protect.params import backbone_params


@pytest.mark.parametrize(("normalize", "stat"), [("max", "max"), ("mean", "mean")])
def test_fisher_is_non_negative_and_normalised(resnet_model, images, normalize, stat):
    reg = EWC(samples=6, normalize=normalize)
    reg.anchor(resnet_model, reference_loader=[images[:3], images[3:]])
    assert reg.fisher_mode == "sampled"
    names = {n for n, _ in backbone_params(resnet_model.backbone)}
    assert set(reg.importance) == names and "model.fc.weight" not in names
    flat = torch.cat([f.flatten() for f in reg.importance.values()])
    assert (flat >= 0).all() and flat.max() > 0
    assert float(getattr(flat, stat)()) == pytest.approx(1.0, rel=1e-4)
    assert reg.fisher_max > reg.fisher_mean > 0


def test_fisher_is_larger_for_params_that_matter(make_tiny):
    model = make_tiny(act=False)
    with torch.no_grad():
        model.backbone.model.fc.weight[:, 2:] = 0.0  # features 2 and 3 are ignored
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    fisher = fisher_diagonal(model, model.backbone, [x], samples=16)
    w = fisher["model.body.weight"]
    assert (w[:2] > 1e-6).all()
    assert (w[2:] == 0).all() and (fisher["model.body.bias"][2:] == 0).all()


def test_empirical_fisher_matches_closed_form(make_tiny):
    model = make_tiny(outputs=3, act=False)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=gen), torch.tensor([0, 2, 1, 1, 0])
    fisher = fisher_diagonal(
        model,
        model.backbone,
        [(x[:2], y[:2]), (x[2:], y[2:])],
        mode="empirical",
        loss_fn=F.cross_entropy,
    )
    # logits = V (W x + b) + c, so d CE / dW = Vᵀ (p − onehot(y)) xᵀ and d CE / db = Vᵀ (p − onehot(y)).
    with torch.no_grad():
        v = model.head.weight
        err = model(x).softmax(-1) - F.one_hot(y, 3).float()
        g_b = err @ v
        g_w = g_b[:, :, None] * x[:, None, :]
    assert torch.allclose(fisher["model.body.weight"], (g_w**2).mean(0), atol=1e-6)
    assert torch.allclose(fisher["model.body.bias"], (g_b**2).mean(0), atol=1e-6)


def test_sampled_fisher_estimates_the_expected_fisher(make_tiny):
    model = make_tiny(act=False)
    x = torch.randn(1, 3, generator=torch.Generator().manual_seed(3))
    fisher = fisher_diagonal(model, model.backbone, [x.repeat(800, 1)], samples=800, seed=1)
    # Expected Fisher: Σ_c p_c (∇ −log p_c)², with ∇_b −log p_c = Uᵀ (p − e_c) (U = source head).
    with torch.no_grad():
        u = model.backbone.model.fc.weight
        p = model.backbone.source_logits(x).softmax(-1)[0]
        grads = (p[None, :] - torch.eye(len(p))) @ u
        expected = (p[:, None] * grads**2).sum(0)
    assert torch.allclose(fisher["model.body.bias"], expected, rtol=0.15, atol=1e-4)


def test_batched_sampled_fisher_estimates_the_same(make_tiny):
    # One backward pass per group of 8: the summed score has the per-sample Fisher as its
    # variance (sampled labels: zero mean), so the estimate matches batch=1 in expectation.
    model = make_tiny(act=False)
    x = torch.randn(1, 3, generator=torch.Generator().manual_seed(3)).repeat(3200, 1)
    exact = fisher_diagonal(model, model.backbone, [x], samples=3200, seed=1)
    grouped = fisher_diagonal(model, model.backbone, [x], samples=3200, batch=8, seed=2)
    for name in ("model.body.bias", "model.body.weight"):
        assert torch.allclose(grouped[name], exact[name], rtol=0.2, atol=1e-4)


def test_penalty_matches_formula(make_tiny):
    model = make_tiny()
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    reg = EWC(lam=2.0, normalize="none")
    reg.anchor(model, reference_loader=[x])
    with torch.no_grad():
        model.backbone.model.body.weight.add_(0.2)
    loss, metrics = reg.penalty(model)
    with torch.no_grad():
        expected = 0.04 * reg.importance["model.body.weight"].sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["ewc_weighted_drift"] == pytest.approx(
        0.04 * reg.importance["model.body.weight"].sum().item(), rel=1e-5
    )


def test_setup_restores_modes_and_trainable_flags(resnet_model, images):
    resnet_model.train()
    resnet_model.backbone.model.conv1.requires_grad_(False)
    resnet_model.backbone.model.bn1.eval()
    EWC(samples=2).anchor(resnet_model, reference_loader=[images[:2]])
    assert resnet_model.training and not resnet_model.backbone.model.bn1.training
    assert not any(p.requires_grad for p in resnet_model.backbone.model.conv1.parameters())
    assert resnet_model.backbone.model.layer1[0].conv1.weight.requires_grad


def test_auto_mode_without_source_head_uses_empirical(make_tiny):
    model = make_tiny()
    model.backbone.model.fc = torch.nn.Identity()
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="loss_fn"):
        EWC().anchor(model, reference_loader=[(x, y)])
    with pytest.raises(ConfigError, match="fisher='empirical'"):
        EWC(fisher="sampled").anchor(model, reference_loader=[(x, y)])
    with pytest.raises(ConfigError, match=r"\(inputs, targets\)"):
        EWC().anchor(model, reference_loader=[x], loss_fn=F.cross_entropy)
    reg = EWC()
    reg.anchor(model, reference_loader=[(x, y)], loss_fn=F.cross_entropy)
    assert reg.fisher_mode == "empirical"


def test_ewc_option_and_loader_errors(make_tiny):
    with pytest.raises(ConfigError, match="reference_loader"):
        EWC().anchor(make_tiny())
    with pytest.raises(ConfigError, match="no inputs"):
        EWC().anchor(make_tiny(), reference_loader=[])
    with pytest.raises(ConfigError, match="batch=0"):
        EWC(batch=0)
    with pytest.raises(ConfigError, match="fisher='exact'"):
        EWC(fisher="exact")
    with pytest.raises(ConfigError, match="normalize=True"):
        EWC(normalize=True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="samples=0"):
        EWC(samples=0)
