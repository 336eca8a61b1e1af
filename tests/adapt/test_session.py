"""Domain adaptation through graft.fit: every method, no target labels, a report-only target set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import graft
from graft.adapt import ADAPTERS
from graft.errors import ConfigError, DataError
from graft.testing import tiny_backbone

QUIET: dict[str, Any] = {"progress": False, "log": lambda s: None}


def _fit(data: Path, **kw: Any) -> graft.GraftModel:
    options: dict[str, Any] = {
        "backbone": tiny_backbone(image_size=32),
        "strategy": "two_stage",
        "strategy_options": {"top": 1},
        "epochs": 1,
        "batch_size": 32,
        **QUIET,
    }
    return graft.fit(data, **{**options, **kw})


@pytest.fixture(scope="module")
def labeled_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graft.data.digits import write_digits

    return write_digits(tmp_path_factory.mktemp("lt") / "digits", per_class=2, seed=2)


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_every_method_adapts_to_a_target_folder_without_labels(
    name: str, digits_dir: Path, flat_target: Path, tmp_path: Path
) -> None:
    model = _fit(digits_dir, unlabeled=flat_target, adapt=name, out=tmp_path / "m")
    info = graft.load(tmp_path / "m").info["adaptation"]
    assert info["method"] == name and info["n_unlabeled"] == 40
    assert info["unlabeled"] == str(flat_target)
    head, tune = ([r for r in model.info["history"] if r["stage"] == s] for s in ("head", "top-1"))
    if ADAPTERS.get(name).stage == "align":
        assert info["active_stages"] == ["top-1"]
        assert all("train_adapt_loss" in r for r in tune), "the loss runs with the backbone"
        assert not any("train_adapt_loss" in r for r in head), "not on stored features"
    else:
        assert [r["epoch"] for r in info["rotation"]["history"]] == [1]
        assert 0.0 <= info["rotation"]["rotation_acc"] <= 1.0


def test_labeled_target_set_only_reports(
    digits_dir: Path, flat_target: Path, labeled_target: Path
) -> None:
    once = {"unlabeled": flat_target, "adapt": "coral", "strategy": "full", "strategy_options": {}}
    plain = _fit(digits_dir, **once)
    reported = _fit(digits_dir, **once, target_eval=labeled_target)
    for (name, a), b in zip(
        plain.state_dict().items(), reported.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), f"{name}: the report changed training"
    assert all("target_accuracy" in r for r in reported.info["history"])
    final = reported.info["adaptation"]["target_eval"]
    assert final["n"] == 20
    assert final["metrics"] == reported.evaluate(labeled_target)


def test_target_report_without_adaptation(
    digits_dir: Path, labeled_target: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log.csv"
    model = _fit(
        digits_dir,
        strategy="feature_extraction",
        strategy_options={},
        target_eval=labeled_target,
        log_csv=str(log),
    )
    assert model.info["adaptation"]["method"] is None
    assert "accuracy" in model.info["adaptation"]["target_eval"]["metrics"]
    header = log.read_text().splitlines()[0].split(",")
    assert "target_accuracy" in header, "the CSV log carries the per-epoch target metrics"


def test_mistakes_are_named(digits_dir: Path, flat_target: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs unlabeled target images"):
        _fit(digits_dir, adapt="dann", dry_run=True)
    with pytest.raises(ConfigError, match=r"feature_extraction.*frozen in every stage"):
        _fit(
            digits_dir, unlabeled=flat_target, strategy="feature_extraction",
            strategy_options={}, dry_run=True,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="no option depth"):
        _fit(digits_dir, unlabeled=flat_target, adapt_options={"depth": 2}, dry_run=True)
    with pytest.raises(ConfigError, match="'rotation' has no option weight"):
        _fit(
            digits_dir, unlabeled=flat_target, adapt="rotation", adapt_options={"weight": 1},
            dry_run=True,
        )  # fmt: skip
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        _fit(digits_dir, unlabeled=tmp_path / "empty", dry_run=True)


def test_dry_run_names_method_and_active_stages(digits_dir: Path, flat_target: Path) -> None:
    lines: list[str] = []
    model = _fit(digits_dir, unlabeled=flat_target, dry_run=True, log=lines.append)
    assert any("adaptation: dann with 40 unlabeled" in s and "active in: top-1" in s for s in lines)
    assert "adaptation" not in model.info, "nothing was trained"


def test_a_frozen_plan_chosen_by_auto_is_explained() -> None:
    from graft.adapt import active_stages
    from graft.strategies.base import Plan, Stage

    head = Stage("head", 1, 1e-3, (0.0, 1.0))
    plan = Plan("feature_extraction", ("stem", "head"), (head,), ("chosen by --strategy auto: x",))
    with pytest.raises(ConfigError, match=r"chosen by --strategy auto.*--strategy two_stage"):
        active_stages(plan, "dann")


def test_dann_resumed_after_a_kill_matches_an_uninterrupted_run(
    digits_dir: Path, flat_target: Path, tmp_path: Path
) -> None:
    """The discriminator travels with the checkpoint, so --resume ends with the same weights."""

    class Killed(Exception):
        pass

    def kill_at_third_epoch(row: dict[str, Any]) -> None:
        if row["stage"] == "top-1" and row["epoch"] == 1:  # head epoch 1, then stage 2 epoch 1
            raise Killed

    kw: dict[str, Any] = {"unlabeled": flat_target, "adapt": "dann", "epochs": 2}
    kw["augment"] = False
    full = _fit(digits_dir, **kw, checkpoint_dir=str(tmp_path / "a"))
    with pytest.raises(Killed):
        _fit(digits_dir, **kw, checkpoint_dir=str(tmp_path / "b"), callbacks=[kill_at_third_epoch])
    resumed = _fit(digits_dir, **kw, checkpoint_dir=str(tmp_path / "b"), resume=True)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resume"


def test_rotation_is_a_resumable_pretext_stage_of_the_loop(
    digits_dir: Path, flat_target: Path, tmp_path: Path
) -> None:
    """Rotation runs in the one loop: checkpoints carry its head and epochs, resume matches."""

    class Killed(Exception):
        pass

    def kill_in_the_head_stage(row: dict[str, Any]) -> None:
        if row["stage"] == "head" and row["epoch"] == 2:
            raise Killed

    kw: dict[str, Any] = {"unlabeled": flat_target, "adapt": "rotation", "epochs": 2}
    kw.update(augment=False, adapt_options={"epochs": 2})
    full = _fit(digits_dir, **kw, checkpoint_dir=str(tmp_path / "a"))
    assert [r["stage"] for r in full.info["history"]][:2] == ["rotation", "rotation"]
    with pytest.raises(Killed):
        _fit(
            digits_dir, **kw, checkpoint_dir=str(tmp_path / "b"), callbacks=[kill_in_the_head_stage]
        )
    resumed = _fit(digits_dir, **kw, checkpoint_dir=str(tmp_path / "b"), resume=True)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resume"
    rotation = resumed.info["adaptation"]["rotation"]
    assert rotation == full.info["adaptation"]["rotation"]
    assert [r["epoch"] for r in rotation["history"]] == [1, 2]
