"""The advisor's baselines: downsampled pixels and the linear probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.measure.probes import (
    PIXEL_SIZE,
    linear_probe,
    pixel_features,
    tfidf_probe,
    tfidf_values,
)


def test_pixel_features_are_downsampled_rgb_in_unit_range(tmp_path: Path) -> None:
    paths = []
    for name, value in (("black", 0), ("white", 255)):
        path = tmp_path / f"{name}.png"
        Image.new("L", (40, 30), value).save(path)  # grayscale becomes 3 channels
        paths.append(path)
    x = pixel_features(paths)
    assert x.shape == (2, PIXEL_SIZE * PIXEL_SIZE * 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], 0.0)
    np.testing.assert_array_equal(x[1], 1.0)
    assert pixel_features(paths, size=4).shape == (2, 4 * 4 * 3)


def test_linear_probe_scores_what_a_linear_model_can_read() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    labels = (x[:, 0] > 0).astype(int)
    train, val = (x[:150], labels[:150]), (x[150:], labels[150:])
    assert linear_probe(train, val, "classification") > 0.9
    noise = rng.integers(0, 2, size=200)
    assert linear_probe((x[:150], noise[:150]), (x[150:], noise[150:]), "classification") < 0.75
    y = x @ np.arange(1.0, 6.0)
    assert linear_probe((x[:150], y[:150]), (x[150:], y[150:]), "regression") > 0.99


def test_linear_probe_needs_two_classes() -> None:
    x = np.zeros((10, 3))
    with pytest.raises(ValueError):
        linear_probe((x, np.zeros(10)), (x, np.zeros(10)), "classification")


def test_tfidf_values_are_per_example_and_average_to_the_probe() -> None:
    train = (["cats purr", "dogs bark", "a cat sleeps", "a dog runs"] * 3, np.array([0, 1] * 6))
    val = (["the cat purrs", "the dog barks", "dogs run"], np.array([0, 1, 1]))
    values = tfidf_values(train, val, "classification")
    assert values.shape == (3,) and set(values.tolist()) <= {0.0, 1.0}
    assert values.mean() == tfidf_probe(train, val, "classification")
