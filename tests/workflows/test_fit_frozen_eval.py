"""A feature-extraction fit scores its final model from the feature store: a repeated fit on the
same files runs no backbone forward at all, and the scores equal those of running the backbone."""

from __future__ import annotations

from pathlib import Path

import pytest

import graft
from graft.testing import tiny_backbone


def test_frozen_final_evaluation_reads_stored_features(digits_dir: Path, tmp_path: Path) -> None:
    backbone = tiny_backbone(image_size=32)
    calls = {"n": 0}
    backbone.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))

    def run() -> graft.GraftModel:
        return graft.fit(
            digits_dir, backbone=backbone, strategy="feature_extraction", epochs=3,
            cache_dir=str(tmp_path / "cache"), progress=False, log=lambda s: None,
        )  # fmt: skip

    run()
    before = calls["n"]
    model = run()
    assert calls["n"] == before, "the second fit, its final evaluation included, ran no backbone"
    metrics = model.info["metrics"]
    assert set(metrics) == {"val", "test"}
    for split in ("val", "test"):
        direct = model.evaluate(model.samples_for(digits_dir, split=split))
        for name, value in metrics[split].items():
            assert value == pytest.approx(direct[name], abs=1e-4), (split, name)
    assert calls["n"] > before  # model.evaluate did run the backbone
