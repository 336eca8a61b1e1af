"""``--channels-last``: the backbone trains in channels-last layout and is saved contiguous."""

from __future__ import annotations

from pathlib import Path

import torch

import graft
from graft.testing import tiny_backbone


def test_channels_last_training_layout_and_saved_model(digits_dir: Path, tmp_path: Path) -> None:
    seen: list[bool] = []
    backbone = tiny_backbone(image_size=32)
    convs = [m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d)]

    def layout(row: dict[str, object]) -> None:
        seen.append(convs[0].weight.is_contiguous(memory_format=torch.channels_last))

    model = graft.fit(
        digits_dir, backbone=backbone, strategy="full", epochs=1, batch_size=32,
        channels_last=True, augment=False, callbacks=[layout], out=str(tmp_path / "m"),
        progress=False, log=lambda s: None,
    )  # fmt: skip
    assert seen == [True], "the backbone trained in channels-last layout"
    assert all(m.weight.is_contiguous() for m in convs), "and is contiguous again afterwards"
    loaded = graft.load(tmp_path / "m")
    files = sorted(digits_dir.rglob("*.png"))[:8]
    assert torch.allclose(
        torch.from_numpy(loaded.predict_outputs(files)),
        torch.from_numpy(model.predict_outputs(files)),
    )
