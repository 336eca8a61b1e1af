"""A backbone takes one kind of input; a dataset yields one; a mismatch is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graft.backbones import INPUT_KINDS, Backbone, check_input_kind
from graft.data.base import Dataset, Samples
from graft.errors import ConfigError
from graft.testing import tiny_backbone


def _dataset(kind: str) -> Dataset:
    samples = Samples([Path("a.txt")], np.zeros(1, dtype=np.int64))
    return Dataset(
        "classification", samples, samples, None, ["x"], source="reviews.csv", input_kind=kind
    )


def test_image_backbone_takes_image_data() -> None:
    bb = tiny_backbone()
    assert bb.input_kind == "image" and "image" in INPUT_KINDS
    assert bb.preprocessing == bb.data_config
    check_input_kind(bb, _dataset("image"))


def test_mismatch_names_both_kinds_and_the_data() -> None:
    with pytest.raises(ConfigError) as e:
        check_input_kind(tiny_backbone(), _dataset("text"))
    msg = str(e.value)
    assert "takes image inputs" in msg and "reviews.csv holds text items" in msg
    assert "graft models" in msg


def test_unknown_input_kind_is_refused() -> None:
    bb = tiny_backbone()
    with pytest.raises(ValueError, match="input_kind 'audio'"):
        Backbone(bb.model, bb.spec, bb.data_config, bb.groups, input_kind="audio")
