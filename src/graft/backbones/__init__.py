"""Backbones: pretrained networks without their classifier, with preprocessing and layer groups."""

from graft.backbones.base import Backbone, BackboneSpec, DataConfig, LayerGroup
from graft.backbones.bundled import BUNDLED, BundledBackbone, register_bundled
from graft.backbones.factory import DEFAULT_BACKBONE, USAGE, create, from_spec, list_bundled
from graft.backbones.groups import layer_groups

__all__ = [
    "BUNDLED",
    "DEFAULT_BACKBONE",
    "USAGE",
    "Backbone",
    "BackboneSpec",
    "BundledBackbone",
    "DataConfig",
    "LayerGroup",
    "create",
    "from_spec",
    "layer_groups",
    "list_bundled",
    "register_bundled",
]
