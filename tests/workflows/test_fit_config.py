"""``graft.fit`` with one configuration: overrides, objects, reruns from a saved model."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

import graft
from graft.cli import main
from graft.config import FitConfig
from graft.data import load as load_data
from graft.errors import ConfigError
from graft.model import GraftModel
from graft.strategies.fine_tune import FineTuneTop
from graft.testing import tiny_backbone
from graft.training.params import trainable_counts
from graft.workflows.fit import make_plan, task_spec_for

TINY = ["--backbone", "timm:test_efficientnet", "--no-pretrained", "--image-size", "32"]
QUIET = {"log": lambda s: None, "progress": False}


def test_unknown_override_lists_close_names(digits_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'epoch'; did you mean epochs"):
        graft.fit(digits_dir, epoch=1, **QUIET)


def test_a_strategy_object_with_options_is_refused(digits_dir: Path) -> None:
    with pytest.raises(ConfigError, match="Strategy object"):
        graft.fit(digits_dir, strategy=FineTuneTop(), strategy_options={"top": 3}, **QUIET)


def test_top_none_trains_every_group(digits_dir: Path) -> None:
    model = graft.fit(
        digits_dir, backbone=tiny_backbone(), strategy="fine_tune_top",
        strategy_options={"top": None}, dry_run=True, **QUIET,
    )  # fmt: skip
    n_groups = len(model.backbone.group_names)
    assert model.info["plan"]["stages"][0]["name"] == f"top-{n_groups}"


def test_trainable_counts_leaves_requires_grad_as_it_was(digits_dir: Path) -> None:
    data = load_data(digits_dir)
    model = GraftModel(tiny_backbone(), task_spec_for(data))
    plan = make_plan(model, "two_stage", epochs=1, lr=1e-3)
    for p in model.backbone.parameters():
        p.requires_grad_(False)  # a frozen backbone, as after a feature-extraction run
    before = [p.requires_grad for p in model.parameters()]
    counts = trainable_counts(model, plan)
    assert counts[0] < counts[1], "the head-only stage trains fewer parameters"
    assert [p.requires_grad for p in model.parameters()] == before


def test_the_run_configuration_is_saved_and_reruns_to_the_same_weights(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    args = ["--strategy", "fine_tune_top", "--top", "1", "--epochs", "1", "--batch-size", "32",
            "--no-progress", "--no-retention", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(["fit", str(digits_dir), *TINY, *args, "--seed", "3", "--out", str(first)]) == 0
    saved = graft.load(first).record.config
    assert saved is not None and FitConfig.from_dict(saved).training.seed == 3
    assert main(["fit", str(digits_dir), "--config", str(first), "--out", str(second)]) == 0
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(bool((a[k] == b[k]).all()) for k in a), "the rerun gives the same weights"
    assert graft.load(second).record.config == {
        **saved,
        "output": {**saved["output"], "out": str(second)},
    }
    # a flag given with --config overrides the saved value
    assert main(["fit", str(digits_dir), "--config", str(first), "--seed", "4", "--dry-run"]) == 0
    capsys.readouterr()
    json_file = tmp_path / "run.json"
    json_file.write_text(__import__("json").dumps(saved))
    assert main(["fit", str(digits_dir), "--config", str(json_file), "--out", str(third)]) == 0
    c = load_file(third / "model.safetensors")
    assert all(bool((a[k] == c[k]).all()) for k in a)
