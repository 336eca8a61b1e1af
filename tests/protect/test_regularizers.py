"""Contract tests over every registered regularizer, and L2-SP / LwF reference values."""

from __future__ import annotations

import copy

import pytest
import torch

from graft._registry import UnknownNameError
from graft.errors import ConfigError
from graft.protect import L2SP, REGULARIZERS, create_regularizer, distillation_kl
from graft.protect.params import backbone_params, head_params

# Options that make each penalty depend on the backbone only (L2-SP's head decay is not zero
# at the pretrained weights by design; it is tested on its own below).
CONTRACT_OPTIONS = {"l2sp": {"beta": 0.0}, "ewc": {"samples": 4}}


def _ready(name: str, model: torch.nn.Module, images: torch.Tensor):
    reg = create_regularizer(name, **CONTRACT_OPTIONS.get(name, {}))
    reg.anchor(
        model,
        reference_loader=[(images[:4], torch.zeros(4, dtype=torch.long))],
        loss_fn=torch.nn.functional.cross_entropy,
    )
    return reg


def _perturb(model: torch.nn.Module, direction: list[torch.Tensor], eps: float) -> None:
    with torch.no_grad():
        for (_, p), d in zip(backbone_params(model.backbone), direction, strict=True):
            p.add_(eps * d)


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_penalty_is_zero_at_pretrained_and_grows(name, resnet_model, images):
    reg = _ready(name, resnet_model, images)
    gen = torch.Generator().manual_seed(0)
    direction = [
        torch.randn(p.shape, generator=gen) for _, p in backbone_params(resnet_model.backbone)
    ]
    values = []
    for step in (0.0, 1e-3, 1e-3):  # cumulative: 0, ε, 2ε
        _perturb(resnet_model, direction, step)
        loss, metrics = reg.penalty(resnet_model, images, resnet_model(images))
        assert loss.ndim == 0 and all(isinstance(v, float) for v in metrics.values())
        values.append(loss.item())
    assert values[0] == 0.0
    assert 0.0 < values[1] < values[2]


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_penalty_gradient_reaches_backbone_only(name, resnet_model, images):
    reg = _ready(name, resnet_model, images)
    direction = [torch.full_like(p, 1e-3) for _, p in backbone_params(resnet_model.backbone)]
    _perturb(resnet_model, direction, 1.0)
    loss, _ = reg.penalty(resnet_model, images)
    loss.backward()
    conv = resnet_model.backbone.model.conv1[0].weight
    assert conv.grad is not None and conv.grad.abs().sum() > 0
    source = resnet_model.backbone.source_head
    assert all(p.grad is None or not p.grad.any() for p in source.parameters())


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_penalty_before_setup_is_an_error(name, resnet_model):
    with pytest.raises(RuntimeError, match="setup"):
        create_regularizer(name).penalty(resnet_model, torch.zeros(1, 3, 32, 32))


def test_create_regularizer_errors():
    with pytest.raises(UnknownNameError, match="ewc"):
        create_regularizer("ewk")
    with pytest.raises(ConfigError, match=r"has no option strength.*alpha, beta"):
        create_regularizer("l2sp", strength=1.0)
    with pytest.raises(ConfigError, match="lam=-1"):
        create_regularizer("lwf", lam=-1.0)
    with pytest.raises(ConfigError, match="temperature"):
        create_regularizer("lwf", temperature=0.0)
    assert create_regularizer("L2SP", alpha=None).options() == {"alpha": 10.0, "beta": 0.01}


def test_l2sp_reference_value(make_tiny):
    model = make_tiny()
    reg = L2SP(alpha=0.3, beta=0.05)
    reg.anchor(model)
    anchor = {n: p.detach().clone() for n, p in backbone_params(model.backbone)}
    with torch.no_grad():
        model.backbone.model.body.weight.add_(0.1)
        model.backbone.model.fc.weight.add_(5.0)  # the source classifier is not pulled back
    loss, metrics = reg.penalty(model)
    with torch.no_grad():
        drift = sum(((p - anchor[n]) ** 2).sum() for n, p in backbone_params(model.backbone))
        head = sum((p**2).sum() for _, p in head_params(model, model.backbone))
    assert float(drift) == pytest.approx(0.1**2 * model.backbone.model.body.weight.numel())
    assert loss.item() == pytest.approx((0.15 * drift + 0.025 * head).item(), rel=1e-6)
    assert metrics["l2sp_drift"] == pytest.approx(float(drift), rel=1e-6)
    assert {n for n, _ in head_params(model, model.backbone)} == {"head.weight", "head.bias"}


def test_lwf_zero_when_student_equals_teacher_and_matches_formula(resnet_model, images):
    reg = create_regularizer("lwf", lam=0.5, temperature=3.0)
    reg.anchor(resnet_model)
    feats = resnet_model.backbone(images)
    loss, metrics = reg.penalty(resnet_model, images, features=feats)
    assert loss.item() == 0.0 and metrics["lwf_agreement"] == 1.0
    teacher = copy.deepcopy(resnet_model.backbone)
    with torch.no_grad():
        resnet_model.backbone.model.conv1[0].weight.mul_(1.5)
    loss, _ = reg.penalty(resnet_model, images)
    # The reference in float64; the loss works on float32 log-probabilities (about 1e-7 each of
    # ~7 in size), so a KL this small agrees to an absolute 1e-6, not to a relative 1e-4.
    t_logits = teacher.source_logits(images).double() / 3.0
    s_logits = resnet_model.backbone.source_logits(images).double() / 3.0
    p_t = t_logits.softmax(-1)
    kl = (p_t * (p_t.log() - s_logits.log_softmax(-1))).sum(-1).mean()
    assert loss.item() == pytest.approx((0.5 * 9.0 * kl).item(), abs=2e-6)
    assert loss.item() > 0


def test_lwf_teacher_is_frozen_and_detached(resnet_model, images):
    reg = create_regularizer("lwf")
    reg.anchor(resnet_model)
    assert not reg.teacher.training
    assert not any(p.requires_grad for p in reg.teacher.parameters())
    assert reg.teacher.source_head is not resnet_model.backbone.source_head


def test_lwf_needs_source_head_and_inputs(make_tiny, resnet_model):
    model = make_tiny()
    model.backbone.model.fc = torch.nn.Identity()
    with pytest.raises(ConfigError, match="source classifier"):
        create_regularizer("lwf").anchor(model)
    reg = create_regularizer("lwf")
    reg.anchor(resnet_model)
    with pytest.raises(ConfigError, match="inputs"):
        reg.penalty(resnet_model)


def test_distillation_kl_reference():
    s = torch.tensor([[1.0, 2.0, 0.0]])
    t = torch.tensor([[0.5, 0.0, 1.0]])
    p, q = (t / 2).softmax(-1), (s / 2).softmax(-1)
    assert float(distillation_kl(s, t, 2.0)) == pytest.approx(float((p * (p / q).log()).sum()))
    assert float(distillation_kl(t, t)) == 0.0
