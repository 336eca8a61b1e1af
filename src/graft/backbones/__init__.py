"""Backbones: pretrained networks without their classifier, with preprocessing and layer groups.

Sources (``bundled:``, ``timm:``, ``scratch:``, ``folder:``, and ``graft:`` from the model layer) are a
registry, :data:`SOURCES`; :func:`create` builds by name and :func:`from_spec` rebuilds a
saved spec through it.
"""

from typing import Any

from graft.backbones import folder, hf_source, scratch, timm_source
from graft.backbones.base import (
    INPUT_KINDS,
    Backbone,
    BackboneSpec,
    DataConfig,
    LayerGroup,
    check_input_kind,
)
from graft.backbones.bundled import BUNDLED, BundledBackbone, BundledSource, register_bundled
from graft.backbones.factory import (
    DEFAULT_BACKBONE,
    create,
    from_spec,
    list_bundled,
    models_text,
    usage,
)
from graft.backbones.groups import layer_groups
from graft.backbones.sources import (
    SOURCES,
    Source,
    SourceExample,
    list_sources,
    register_source,
    resolve,
)

del folder, hf_source, scratch, timm_source  # imported for their registration

__all__ = [
    "BUNDLED",
    "DEFAULT_BACKBONE",
    "INPUT_KINDS",
    "SOURCES",
    "USAGE",
    "Backbone",
    "BackboneSpec",
    "BundledBackbone",
    "BundledSource",
    "DataConfig",
    "LayerGroup",
    "Source",
    "SourceExample",
    "check_input_kind",
    "create",
    "from_spec",
    "layer_groups",
    "list_bundled",
    "list_sources",
    "models_text",
    "register_bundled",
    "register_source",
    "resolve",
    "usage",
]


def __getattr__(name: str) -> Any:
    if name == "USAGE":  # kept for callers of the former constant; built from the registry
        return usage()
    raise AttributeError(f"module 'graft.backbones' has no attribute {name!r}")
