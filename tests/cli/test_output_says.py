"""Output says what it did: evaluate's split, N and per-class table; predict --top-k; the
retention report only where it means something; one pair of progress flags on every command."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import graft
from graft.cli import main
from graft.testing import tiny_backbone

QUIET = {"progress": False, "retention": False}


@pytest.fixture(scope="module")
def saved(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), strategy="feature_extraction",
        epochs=3, log=lambda s: None, **QUIET,
    )  # fmt: skip
    return model.save(tmp_path_factory.mktemp("m") / "model")


def test_evaluate_names_the_split_and_n_and_prints_per_class(
    saved: Path, digits_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(saved), str(digits_dir), "--no-progress", "--confusion"]) == 0
    out = capsys.readouterr().out
    report = graft.load(saved).evaluation(digits_dir, with_confusion=True)
    assert report["split"] == "test" and report["n"] > 0
    assert f"evaluated the test split of {digits_dir}: N={report['n']}" in out
    assert "precision  recall     f1  support" in out
    for row in report["per_class"]:
        assert sum(1 for line in out.splitlines() if line.startswith(f"{row['class']} ")) == 2
    assert sum(map(sum, report["confusion"])) == report["n"]
    assert "confusion (rows: true, columns: predicted)" in out
    assert main(["evaluate", str(saved), str(digits_dir), "--split", "val"]) == 0
    assert "evaluated the val split" in capsys.readouterr().out


def test_predict_top_k_gives_the_k_best_classes(
    saved: Path, digits_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(p) for p in sorted((digits_dir / "3").iterdir())[:2]]
    assert main(["predict", str(saved), *files, "--top-k", "3", "--no-progress"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2
    for row in rows:
        probs = [float(row[f"top{i}_probability"]) for i in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and row["top1"] == row["prediction"]
        assert len({row["top1"], row["top2"], row["top3"]}) == 3
    model = graft.load(saved)
    proba, _ = model.predict_distribution(files)
    assert float(rows[0]["top1_probability"]) == pytest.approx(proba[0].max(), abs=1e-6)


def test_retention_is_skipped_with_a_reason_for_a_frozen_or_random_backbone(
    digits_dir: Path,
) -> None:
    lines: list[str] = []
    model = graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), strategy="feature_extraction",
        epochs=1, progress=False, log=lines.append,
    )  # fmt: skip
    assert "retention" not in model.info
    assert any(line.startswith("retention report skipped: backbone") for line in lines)
    assert any("randomly initialised" in line for line in lines)


def test_frozen_pretrained_backbone_skips_retention(digits_dir: Path, tmp_path: Path) -> None:
    from graft.data import load as load_data
    from graft.protect import RetentionReport

    retention_skip_reason = RetentionReport.skip_reason
    from graft.workflows.fit import make_plan, task_spec_for

    source = graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), strategy="feature_extraction",
        epochs=1, log=lambda s: None, **QUIET,
    ).save(tmp_path / "src")  # fmt: skip
    data = load_data(digits_dir)
    model = graft.GraftModel(graft.backbone(f"graft:{source}"), task_spec_for(data))
    frozen = make_plan(model, "feature_extraction", epochs=1, lr=1e-3)
    tuned = make_plan(model, "two_stage", epochs=1, lr=1e-3)
    assert "frozen in every stage" in (retention_skip_reason(model, frozen) or "")
    assert retention_skip_reason(model, tuned) is None


@pytest.mark.parametrize(
    "command",
    ["fit", "adapt", "predict", "evaluate", "lr-find", "rank", "similarity", "advise", "compare"],
)
def test_every_command_takes_progress_and_no_progress(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "--progress, --no-progress" in out, command
