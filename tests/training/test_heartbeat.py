"""A log without a terminal still hears from a long epoch: elapsed time and time left."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import graft
from graft.testing import tiny_backbone
from graft.training import heartbeat
from graft.training.heartbeat import Heartbeat, format_seconds


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (4.4, 185, 3720)] == ["4s", "3m05s", "1h02m"]


def test_a_disabled_heartbeat_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", 0.0)
    lines: list[str] = []
    beat = Heartbeat("x", 10, lines.append, enabled=False)
    beat.tick(5)
    assert lines == []


def test_a_long_epoch_logs_progress_lines(
    digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", 0.0)  # every step is "long enough"
    lines: list[str] = []
    graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), strategy="full", epochs=1,
        batch_size=16, progress=False, retention=False, log=lines.append,
    )  # fmt: skip
    beats = [
        line for line in lines if re.search(r"step \d+/\d+, \S+ elapsed, about \S+ left", line)
    ]
    assert beats, "pytest's stderr is not a terminal: the heartbeat writes to the log"
    assert all("full epoch 1/1" in line for line in beats)
