"""The training loop: stored features, resume, NaN stop, monitors, class weights, logs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import graft
from graft.errors import ArtifactError, ConfigError, TrainingError
from graft.testing import tiny_backbone

QUIET: dict[str, Any] = {"progress": False, "log": lambda s: None}


def test_frozen_run_costs_one_backbone_pass_and_a_rerun_none(
    digits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forward calls are counted: the engine choice, which is timed (a loaded machine's slow
    # first probe can make other engines worth probing), is tested in tests/backbones.
    monkeypatch.setenv("GRAFT_ENGINE", "eager")
    backbone = tiny_backbone(image_size=32)
    calls = {"n": 0}
    backbone.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    seen: list[int] = []  # backbone calls so far, at the end of each epoch

    def run() -> graft.GraftModel:
        return graft.fit(
            digits_dir, backbone=backbone, strategy="feature_extraction", epochs=20,
            cache_dir=str(tmp_path / "cache"), batch_size=16,
            callbacks=[lambda row: seen.append(calls["n"])], **QUIET,
        )  # fmt: skip

    model = run()
    n_train, n_val = model.info["data"]["n_train"], model.info["data"]["n_val"]
    one_pass = int(np.ceil(n_train / 64) + np.ceil(n_val / 64))  # extraction batches of 64
    # The first row (the head's linear start on the stored features) costs one backbone pass.
    assert model.info["history"][0]["kind"] == "linear_start"
    assert len(seen) >= 2 and seen[0] == one_pass, "the first pass costs one backbone pass"
    assert seen[-1] == seen[0], "the epochs cost none"
    before = calls["n"]
    seen.clear()
    run()
    assert seen[-1] == before, "a second run on the same data runs no backbone forward"


def _fit_two_stage(digits_dir: Path, ckpt: Path, **kw: Any) -> graft.GraftModel:
    return graft.fit(
        digits_dir,
        backbone=tiny_backbone(image_size=32, seed=1),
        strategy="two_stage",
        strategy_options={"top": 1, "patience": None},
        epochs=3,
        batch_size=32,
        seed=7,
        checkpoint_dir=str(ckpt),
        augment=True,
        **QUIET,
        **kw,
    )


def test_resume_after_interruption_gives_the_same_weights(digits_dir: Path, tmp_path: Path) -> None:
    full = _fit_two_stage(digits_dir, tmp_path / "a")

    class Killed(Exception):
        pass

    seen = {"n": 0}

    def kill_after_four_epochs(row: dict[str, Any]) -> None:
        seen["n"] += 1
        if seen["n"] == 4:  # mid stage 2 (3 head epochs + 1)
            raise Killed

    with pytest.raises(Killed):
        _fit_two_stage(digits_dir, tmp_path / "b", callbacks=[kill_after_four_epochs])
    resumed = _fit_two_stage(digits_dir, tmp_path / "b", resume=True)
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=f"{k} differs after resume")
    assert [r["epoch"] for r in resumed.info["history"]] == [
        r["epoch"] for r in full.info["history"]
    ]


def test_resume_without_checkpoint_is_a_clear_error(digits_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no checkpoint"):
        _fit_two_stage(digits_dir, tmp_path / "none", resume=True)


def test_nan_loss_stops_with_a_clear_message(
    digits_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graft.tasks import Classification

    monkeypatch.setattr(Classification, "loss", lambda self, o, t: o.sum() * float("nan"))
    with pytest.raises(
        TrainingError, match=r"loss became nan in stage 'head', epoch 1, step 0.*--lr"
    ):
        graft.fit(
            digits_dir, backbone=tiny_backbone(), strategy="feature_extraction", epochs=1, **QUIET
        )


@pytest.mark.parametrize("monitor", ["val_accuracy", "macro_f1", "val_loss"])
def test_early_stopping_on_any_metric_restores_best(digits_dir: Path, monitor: str) -> None:
    model = graft.fit(
        digits_dir,
        backbone=tiny_backbone(),
        strategy="feature_extraction",
        strategy_options={"patience": 2},
        epochs=8,
        lr=0.5,
        monitor=monitor,
        **QUIET,
    )
    rows = model.info["history"]
    key = monitor if monitor.startswith("val_") else f"val_{monitor}"
    best = [r for r in rows if r["best"]]
    assert len(best) == 1
    values = [r[key] for r in rows]
    assert best[0][key] == (min(values) if key == "val_loss" else max(values))


def test_unknown_monitor_lists_measured_metrics(digits_dir: Path) -> None:
    with pytest.raises(ConfigError, match="val_accuracy"):
        graft.fit(
            digits_dir,
            backbone=tiny_backbone(),
            strategy="feature_extraction",
            epochs=1,
            monitor="val_bleu",
            **QUIET,
        )


def test_class_weights_sampler_csv_log_and_schedule(digits_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    model = graft.fit(
        digits_dir,
        backbone=tiny_backbone(),
        strategy="feature_extraction",
        epochs=3,
        class_weights="balanced",
        sampler="weighted",
        log_csv=str(log),
        schedule="linear",
        warmup=0.2,
        grad_clip=1.0,
        grad_accum=2,
        **QUIET,
    )
    rows = list(csv.DictReader(log.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]  # 0: the head's linear start
    assert rows[0]["kind"] == "linear_start"
    assert {"train_loss", "val_loss", "val_accuracy", "lr"} <= set(rows[1])
    assert model.task.class_weights is not None
    assert float(rows[-1]["lr"]) < float(rows[1]["lr"])  # linear decay


def test_unknown_training_option_is_named(digits_dir: Path) -> None:
    with pytest.raises(ConfigError, match="batchsize"):
        graft.fit(digits_dir, backbone=tiny_backbone(), batchsize=3, **QUIET)


def test_constant_features_are_flagged(digits_dir: Path) -> None:
    """The bundled EfficientNet-Lite0 gives all-zero features at 32 px: the fit says so."""
    lines: list[str] = []
    kw: dict[str, Any] = {**QUIET, "strategy": "feature_extraction", "epochs": 1}
    kw["log"] = lines.append
    graft.fit(digits_dir, backbone="efficientnet_lite0", image_size=32, **kw)
    assert any("same features at 32 px" in line for line in lines)
    lines.clear()
    graft.fit(digits_dir, backbone=tiny_backbone(), **kw)
    assert not any("same features" in line for line in lines)
