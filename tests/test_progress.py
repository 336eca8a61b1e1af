"""A log without a terminal still hears from every long step: elapsed time and time left."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import graft
from graft import progress as heartbeat
from graft.progress import Heartbeat, beating, format_seconds
from graft.testing import tiny_backbone


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


def test_beating_yields_everything_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", 0.0)
    lines: list[str] = []
    assert list(beating(iter(range(3)), "pass", 3, lines.append)) == [0, 1, 2]
    assert lines[-1].startswith("  pass: batch 3/3,") and lines[-1].endswith("about 0s left")


def test_extraction_and_evaluation_beat_in_a_log(
    digits_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", 0.0)
    lines: list[str] = []
    graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), strategy="two_stage", epochs=2,
        batch_size=16, progress=False, retention=False, log=lines.append,
        cache_dir=str(tmp_path),  # a fresh store: another test may have stored these features
    )  # fmt: skip
    err = capsys.readouterr().err.splitlines()  # no terminal: lines go beside tqdm's bars
    extraction = [line for line in err if re.match(r"  features: file \d+/\d+, ", line)]
    assert extraction, "the frozen feature pass writes heartbeat lines to a log"
    done, total = re.findall(r"file (\d+)/(\d+)", extraction[-1])[0]
    assert done == total and int(total) > 0
    assert any(re.match(r"  predict: batch \d+/\d+, .* elapsed, about .* left", x) for x in err)
