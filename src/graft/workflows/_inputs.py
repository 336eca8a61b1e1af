"""A dataset and a backbone from what a workflow was given: a path or name, or the built object.

Transition (issue 10): ``graft.data.load`` and ``graft.backbones.create`` are to accept an
already-built :class:`Dataset` / :class:`Backbone` themselves; until they do, these two pass
the object through. Once they do, callers call them directly and this module goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graft.backbones import create
from graft.backbones.base import Backbone
from graft.data import load
from graft.data.base import Dataset


def dataset(data: str | Path | Dataset, **options: Any) -> Dataset:
    """``graft.data.load(data, **options)``; a Dataset passes through unchanged."""
    return data if isinstance(data, Dataset) else load(data, **options)


def backbone(
    spec: str | Backbone,
    *,
    weights: str | Path | None = None,
    pretrained: bool = True,
    image_size: int | None = None,
    max_length: int | None = None,
) -> Backbone:
    """``graft.backbones.create(spec, ...)``; a Backbone passes through (resized if asked)."""
    if isinstance(spec, Backbone):
        if image_size is not None:
            spec.data_config = spec.data_config.with_image_size(image_size)
        return create(spec, max_length=max_length)
    return create(
        spec, pretrained=pretrained, weights=weights, image_size=image_size, max_length=max_length
    )
