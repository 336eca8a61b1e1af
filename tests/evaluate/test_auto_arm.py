"""``graft compare``'s ``auto`` arm trains what ``graft fit --strategy auto`` trains, on the
comparison's total budget (issue 15 item 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import graft
from graft.evaluate.arms import ARMS
from graft.testing import tiny_backbone


def _quiet(message: str) -> None:
    del message


def test_the_auto_arm_is_the_fit_that_auto_makes(small_digits: Path, tmp_path: Path) -> None:
    budget = {"epochs": 3, "batch_size": 16, "image_size": 32, "lr": 3e-3}
    result = graft.compare(
        small_digits, backbone=tiny_backbone(), arms=["auto"], fractions=[], budget="quick",
        importance=False, baseline=False, cache_dir=str(tmp_path / "a"), log=_quiet, **budget,
    )  # fmt: skip
    arm = result.models["auto"]
    epochs, options = ARMS.get("auto").fit_options(3)
    direct = graft.fit(
        result.dataset, backbone=tiny_backbone(), strategy="auto", strategy_options=options,
        epochs=epochs, batch_size=16, image_size=32, lr=3e-3, seed=0, cache_dir=str(tmp_path / "b"),
        progress=False, log=_quiet,
    )  # fmt: skip
    assert arm.record.plan == direct.record.plan and arm.record.plan is not None
    assert sum(s["epochs"] for s in arm.record.plan["stages"]) == 3, "the comparison's budget"
    assert [r["arm"] for r in result.rows] == ["auto"] and arm.info["advice"]["lines"] == (
        direct.info["advice"]["lines"]
    )
    theirs = direct.state_dict()  # the same weights (compare then only fits a temperature)
    for name, tensor in arm.state_dict().items():
        np.testing.assert_allclose(tensor.numpy(), theirs[name].numpy(), rtol=1e-5, atol=1e-6)
