"""Rotation self-supervision: correct rotations and labels, and a pre-training loop that learns."""

from __future__ import annotations

import pytest
import torch

from graft.adapt import RotationPretext, pretrain_rotation, rotate_batch
from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.errors import ConfigError


def _backbone() -> Backbone:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    spec = BackboneSpec(name="tiny", arch="resnet10t", source="timm", pretrained=False)
    return Backbone(model, spec, DataConfig(input_size=(3, 32, 32)), groups=[])


def test_rotations_and_labels_of_a_known_image():
    image = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    x = torch.stack([image, 10 * image])[:, None]  # (2, 1, 2, 2)
    rotated, labels = rotate_batch(x)
    assert rotated.shape == (8, 1, 2, 2)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    expected = {  # counter-clockwise turns of [[1, 2], [3, 4]]
        0: [[1.0, 2.0], [3.0, 4.0]],
        1: [[2.0, 4.0], [1.0, 3.0]],
        2: [[4.0, 3.0], [2.0, 1.0]],
        3: [[3.0, 1.0], [4.0, 2.0]],
    }
    for k, grid in expected.items():
        assert rotated[2 * k, 0].tolist() == grid
        assert rotated[2 * k + 1, 0].tolist() == (10 * torch.tensor(grid)).tolist()


def test_non_square_images_are_refused():
    with pytest.raises(ConfigError, match="square"):
        rotate_batch(torch.zeros(2, 3, 4, 5))


def test_pretext_loss_and_accuracy():
    head = RotationPretext(4)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.eye(4))
        head.classifier.bias.zero_()
    feats = torch.eye(4) * 10
    loss, metrics = head(feats, torch.tensor([0, 1, 2, 0]))
    assert metrics["rotation_acc"] == 0.75
    assert loss.item() == pytest.approx(metrics["rotation_loss"])
    with pytest.raises(ConfigError, match="pre-training step"):
        head.align(feats, feats, 0.0)


def test_pretraining_learns_and_restores_flags():
    backbone = _backbone()
    backbone.eval()
    backbone.model.conv1.requires_grad_(False)
    source_head = backbone.source_head.weight.detach().clone()
    stem = backbone.model.conv1[0].weight.detach().clone()
    # Images with a clear orientation cue: bright top rows.
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x[:, :, :8] += 2.0
    loader = [(x, torch.zeros(6))]
    out = pretrain_rotation(backbone, loader, epochs=6, lr=1e-3)
    history = out["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["rotation_loss"] < history[0]["rotation_loss"]
    assert out["rotation_acc"] == history[-1]["rotation_acc"] > 0.5
    assert not backbone.training
    assert not backbone.model.conv1[0].weight.requires_grad
    assert not torch.equal(stem, backbone.model.conv1[0].weight)
    assert torch.equal(source_head, backbone.source_head.weight)


def test_pretraining_errors():
    backbone = _backbone()
    with pytest.raises(ConfigError, match="no images"):
        pretrain_rotation(backbone, [])
    with pytest.raises(ConfigError, match="epochs=0"):
        pretrain_rotation(backbone, [torch.zeros(1, 3, 8, 8)], epochs=0)
