"""Retention: top-1 agreement and KL between the original and fine-tuned source predictions."""

from __future__ import annotations

import copy

import pytest
import torch

from graft.backbones.engines import TOLERANCE, available
from graft.errors import ConfigError
from graft.protect import retention


def test_identical_backbones_fully_agree(resnet_model, images):
    backbone = resnet_model.backbone
    out = retention(backbone, copy.deepcopy(backbone), images)
    assert out == {"top1_agreement": 1.0, "mean_kl": 0.0, "samples": 8.0, "engine": "eager"}


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


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Crops of scikit-image's bundled photographs, 32 px, normalised as ImageNet weights expect."""
    pytest.importorskip("skimage")
    import numpy as np

    from graft.measure.source import reference_crops

    crops = [np.asarray(c.resize((32, 32))) for c in reference_crops(per_photo=2)]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return (x - mean[:, None, None]) / std[:, None, None]


@pytest.mark.parametrize("engine", [n for n in available("image") if n != "eager"])
def test_engine_path_matches_eager_on_real_photos(
    engine: str, resnet_model, photos: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = resnet_model.backbone
    tuned = copy.deepcopy(original)
    torch.manual_seed(0)
    with torch.no_grad():  # a fine-tuned backbone: every weight moved, the classifier far
        for p in tuned.parameters():
            p.add_(0.2 * torch.randn_like(p) * p.std().nan_to_num(0.0))
        tuned.model.fc.weight.copy_(torch.randn_like(tuned.model.fc.weight))
    loader = [(photos[:16], None), (photos[16:], None)]
    monkeypatch.setenv("GRAFT_ENGINE", "eager")  # the reference: the plain pass
    eager = retention(original, tuned, loader)
    monkeypatch.setenv("GRAFT_ENGINE", engine)
    fast = retention(original, tuned, loader)
    assert (eager["engine"], fast["engine"]) == ("eager", engine)
    assert fast["samples"] == eager["samples"] == len(photos)
    assert eager["mean_kl"] > 0 and eager["top1_agreement"] < 1  # the check has something to see
    assert fast["top1_agreement"] == eager["top1_agreement"]  # same top-1 on every photo
    assert fast["mean_kl"] == pytest.approx(eager["mean_kl"], rel=10 * TOLERANCE, abs=TOLERANCE)
