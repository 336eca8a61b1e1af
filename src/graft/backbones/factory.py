"""Building backbones by name through the source registry, and rebuilding them from a spec.

``create("timm:resnet50")`` asks the ``timm`` source; ``create("efficientnet_lite0")`` (a bare
name) the first source that claims it (see :mod:`graft.backbones.sources`). ``from_spec``
rebuilds what a saved model recorded, through the same registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graft.backbones.base import Backbone, BackboneSpec
from graft.backbones.bundled import BUNDLED
from graft.backbones.hf_source import TEXT_DESCRIPTIONS
from graft.backbones.plain import DEFAULT_BACKBONE
from graft.backbones.sources import list_sources, resolve, source_for_spec
from graft.errors import ConfigError

__all__ = ["DEFAULT_BACKBONE", "create", "from_spec", "list_bundled", "models_text", "usage"]


def create(
    name: str | Backbone = DEFAULT_BACKBONE,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    image_size: int | None = None,
    max_length: int | None = None,
) -> Backbone:
    """A backbone by name, with its preprocessing and ordered layer groups, in eval mode.

    Args:
        name: ``PREFIX:NAME`` (``bundled:``, ``timm:``, ``scratch:``, ``graft:``), a bare name
            (bundled, ``small_cnn*``, else timm), a folder holding a saved graft model, or a
            built Backbone (returned as it is, at ``image_size`` when given).
        pretrained: load pretrained weights; False gives a random initialisation.
        weights: a local weights file for the architecture (overrides the default weights).
        image_size: square input size; overrides the weights' default (``--image-size``).
        max_length: text backbones: tokens per text (``--max-length``); longer texts are cut.

    Example:
        >>> bb = create("efficientnet_lite0")  # doctest: +SKIP
        >>> bb(torch.randn(2, 3, 224, 224)).shape  # doctest: +SKIP
        torch.Size([2, 1280])
    """
    if isinstance(name, Backbone):
        if image_size is not None:
            name.data_config = name.data_config.with_image_size(image_size)
        return _with_max_length(name, max_length)
    if weights is not None and not pretrained:
        raise ConfigError("weights= (--weights) and pretrained=False (--no-pretrained) conflict")
    source, rest = resolve(name)
    path = Path(weights) if weights is not None else None
    built = source.build(rest, pretrained=pretrained, weights=path, image_size=image_size)
    return _with_max_length(built, max_length)


def _with_max_length(backbone: Backbone, max_length: int | None) -> Backbone:
    if max_length is None:
        return backbone
    setter = getattr(backbone, "with_max_length", None)
    if setter is None:
        raise ConfigError(
            f"--max-length is for text backbones; {backbone.spec.name!r} reads images"
        )
    result: Backbone = setter(max_length)
    return result


def from_spec(spec: BackboneSpec, *, load_weights: bool) -> Backbone:
    """Rebuild a backbone from its spec (e.g. from a saved model's JSON), through its source.

    Args:
        spec: the spec recorded when the backbone was created.
        load_weights: also load the original weights (bundled, hub, local file or saved model,
            checked against the recorded sha256); False builds the architecture only, for an
            artifact that loads its own state dict.
    """
    return source_for_spec(spec).rebuild(spec, load_weights=load_weights)


def list_bundled() -> list[dict[str, Any]]:
    """Bundled backbones (work offline): name, description, params, feature_dim, source, license."""
    return [entry.summary() for _, entry in BUNDLED.items()]


def usage() -> str:
    """How to name a backbone of each registered source (the tail of ``graft models``)."""
    return "\n".join(s["usage"] for s in list_sources() if s["usage"])


def models_text() -> str:
    """The whole ``graft models`` listing: bundled entries, then every source and its usage."""
    lines = ["bundled backbones (work offline):"]
    lines += [f"  {e['name']:<22} {e.get('description', '')}" for e in list_bundled()]
    lines += [f"  {name:<22} {text} (text)" for name, text in TEXT_DESCRIPTIONS.items()]
    lines += ["", "sources (--backbone PREFIX:NAME; input kind):"]
    for s in list_sources():
        lines.append(f"  {s['prefix'] + ':':<10} {s['input_kind']:<6} {s['summary']}")
    return "\n".join([*lines, "", usage()])
