"""Layer groups: ordered input to output, every non-classifier parameter in exactly one group."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from graft.backbones import LayerGroup, create, layer_groups
from graft.backbones.groups import classifier_param_names

TINY = ["test_efficientnet", "resnet10t", "test_vit", "test_convnext", "test_byobnet"]


def _check_contract(model: nn.Module, groups: list[LayerGroup]) -> None:
    order = {n: i for i, (n, _) in enumerate(model.named_parameters())}
    grouped = [n for g in groups for n in g.param_names]
    assert len(grouped) == len(set(grouped)), "a parameter is in two groups"
    assert set(grouped) == set(order) - classifier_param_names(model)
    assert all(g.param_names for g in groups)
    assert len({g.name for g in groups}) == len(groups)
    firsts = [min(order[n] for n in g.param_names) for g in groups]
    assert firsts == sorted(firsts), "groups are not ordered input to output"


@pytest.mark.parametrize("arch", TINY)
def test_timm_groups_contract(arch: str) -> None:
    bb = create(f"timm:{arch}", pretrained=False)
    _check_contract(bb.model, bb.groups)
    first_conv = bb.model.pretrained_cfg["first_conv"]
    assert bb.group_names[0] == "stem"
    assert any(n.startswith(first_conv) for n in bb.groups[0].param_names)
    assert "head" not in bb.group_names  # graft's own head is the group after these


def test_final_conv_norm_is_its_own_group() -> None:
    bb = create("timm:test_efficientnet", pretrained=False)
    assert bb.group_names[-1] == "final"
    assert set(bb.groups[-1].param_names) == {
        "conv_head.weight",
        "bn2.weight",
        "bn2.bias",
    }
    vit = create("timm:test_vit", pretrained=False)
    assert vit.group_names[-1] == "final" and vit.groups[-1].param_names == (
        "norm.weight",
        "norm.bias",
    )


def test_resnet_stage_names() -> None:
    bb = create("resnet10t", pretrained=False)
    assert bb.group_names == ["stem", "layer1", "layer2", "layer3", "layer4"]


class _NoMatcher(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 4))
        self.embed = nn.Linear(3, 4)
        self.body = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        self.classifier = nn.Linear(4, 2)
        self.pretrained_cfg = {"classifier": "classifier"}


def test_fallback_one_group_per_child_without_matcher() -> None:
    model = _NoMatcher()
    groups = layer_groups(model)
    _check_contract(model, groups)
    assert [g.name for g in groups] == ["stem", "embed", "final"]
    assert groups[0].param_names == ("token",)


def test_classifier_names_for_tuple_and_nested_heads() -> None:
    convnext = timm.create_model("test_convnext", pretrained=False)
    assert classifier_param_names(convnext) == {"head.fc.weight", "head.fc.bias"}
    assert classifier_param_names(nn.Linear(2, 2)) == set()
