"""Backbones: pretrained networks without their classifier, with preprocessing and layer groups."""

from graft.backbones.base import Backbone, BackboneSpec, DataConfig, LayerGroup

__all__ = ["Backbone", "BackboneSpec", "DataConfig", "LayerGroup"]
