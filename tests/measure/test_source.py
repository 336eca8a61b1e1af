"""What the source adds: its classifier's probabilities, its reference sample, the score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graft.errors import ConfigError
from graft.measure.source import measure_score, reference_features, source_probabilities
from graft.testing import tiny_backbone


def test_source_probabilities_match_the_source_classifier() -> None:
    bb = tiny_backbone().eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        feats, logits = bb(x).numpy(), bb.source_logits(x)
    probs = source_probabilities(bb, feats)
    np.testing.assert_allclose(probs, torch.softmax(logits.double(), 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0)


def test_reference_sample_only_for_bundled_weights_at_a_known_size() -> None:
    from graft.backbones import create as make_backbone

    ref, _ = reference_features(make_backbone("efficientnet_lite0", image_size=64))
    assert ref is not None and ref.shape[1] == 1280 and ref.dtype == np.float32
    assert np.isfinite(ref).all() and ref.std(axis=0).max() > 0
    none, why = reference_features(make_backbone("efficientnet_lite0", image_size=40))
    assert none is None and "--image-size" in why
    none, why = reference_features(tiny_backbone())
    assert none is None and "no reference sample" in why


def test_scores_cover_classification_and_regression_only() -> None:
    with pytest.raises(ConfigError, match="classification and regression"):
        measure_score("logme", tiny_backbone(), np.zeros((4, 2)), np.zeros((4, 2)), "multilabel")
