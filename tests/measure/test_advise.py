"""The advisor's measuring: the facts the decision reads, from stored features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.data import load
from graft.measure.advise import measure_facts
from graft.measure.probes import PIXEL_SIZE
from graft.measure.stored import store_config
from graft.testing import tiny_backbone


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graft.data.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("d") / "digits", per_class=8, seed=1)


def test_facts_of_a_random_backbone(small_digits: Path, tmp_path: Path) -> None:
    data = load(small_digits)
    facts = measure_facts(tiny_backbone(), data, store_config(str(tmp_path)), seed=0)
    assert facts.task == "classification" and facts.n_train == len(data.train)
    assert facts.n_outputs == 10 and not facts.pretrained and not facts.constant_features
    assert facts.gap is None and "no reference sample" in facts.gap_note
    assert facts.score_name == "logme" and facts.score is not None
    assert facts.pixel_score is not None, "LogME reads features, so pixels get it too"
    assert facts.probe is not None and 0.0 <= facts.probe <= 1.0
    assert facts.pixel_probe is not None and facts.pixel_size == PIXEL_SIZE


def test_constant_features_stop_the_measuring_with_a_hint(
    small_digits: Path, tmp_path: Path
) -> None:
    bb = tiny_backbone()
    with torch.no_grad():
        for p in bb.parameters():
            p.zero_()  # every image gets the same features
    facts = measure_facts(bb, load(small_digits), store_config(str(tmp_path)))
    assert facts.constant_features and "--image-size" in facts.gap_note
    assert facts.score is None and facts.probe is None


def test_sizes_a_network_refuses_are_left_out(small_digits: Path, tmp_path: Path) -> None:
    """A ViT with a fixed patch grid refuses every smaller size: its own size stays."""
    from graft.backbones import create

    torch.manual_seed(0)
    vit = create("timm:vit_tiny_patch16_224", pretrained=False)
    native = vit.data_config.image_size
    facts = measure_facts(vit, load(small_digits), store_config(str(tmp_path)))
    assert facts.data_side == 32 and native >= 64, "small images: sizes were tried"
    assert facts.size_probes == () and facts.image_size == native and not facts.size_given
