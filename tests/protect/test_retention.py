"""Retention: top-1 agreement and KL between the original and fine-tuned source predictions."""

from __future__ import annotations

import copy

import pytest
import torch

from graft.errors import ConfigError
from graft.protect import retention


def test_identical_backbones_fully_agree(resnet_model, images):
    backbone = resnet_model.backbone
    out = retention(backbone, copy.deepcopy(backbone), images)
    assert out == {"top1_agreement": 1.0, "mean_kl": 0.0, "samples": 8.0}


def test_reference_values_on_a_changed_backbone(resnet_model, images):
    original = resnet_model.backbone
    tuned = copy.deepcopy(original)
    with torch.no_grad():
        tuned.model.fc.weight.copy_(torch.randn_like(tuned.model.fc.weight))
    tuned.train()
    loader = [(images[:5], torch.zeros(5)), (images[5:], torch.zeros(3))]
    out = retention(original, tuned, loader, max_samples=7)
    assert tuned.training and not original.training  # modes restored
    with torch.no_grad():
        a, b = original.source_logits(images[:7]), tuned.eval().source_logits(images[:7])
        p = a.softmax(-1)
        kl = (p * (a.log_softmax(-1) - b.log_softmax(-1))).sum(-1).mean()
        agree = (a.argmax(-1) == b.argmax(-1)).float().mean()
    assert out["samples"] == 7.0
    assert out["mean_kl"] == pytest.approx(kl.item(), rel=1e-4) and out["mean_kl"] > 0
    assert out["top1_agreement"] == pytest.approx(agree.item())


def test_needs_source_heads(resnet_model, images):
    tuned = copy.deepcopy(resnet_model.backbone)
    tuned.model.reset_classifier(0)
    with pytest.raises(ConfigError, match="source classifier"):
        retention(resnet_model.backbone, tuned, images)
