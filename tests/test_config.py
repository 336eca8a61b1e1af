"""The run configuration: one source of defaults and help, flat overrides, JSON round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import pytest

from graft.config import (
    DEFAULT_BACKBONE,
    SECTIONS,
    SPLIT_FRACTION,
    STRATEGY_OPTIONS,
    FitConfig,
    TrainConfig,
    flat_fields,
    iter_fields,
)
from graft.errors import ConfigError


def test_every_field_has_help_and_a_unique_flat_name() -> None:
    paths = [path for path, _ in iter_fields(FitConfig)]
    assert len(flat_fields()) == len(paths), "two fields share a flat name"
    for _, f in iter_fields(FitConfig):
        assert f.metadata.get("help"), f"{f.name} has no help text"
    assert set(SECTIONS) == {f.name for f in fields(FitConfig)}


def test_defaults_come_from_the_constants() -> None:
    cfg = FitConfig()
    assert cfg.model.backbone == DEFAULT_BACKBONE
    assert cfg.data.val_fraction == cfg.data.test_fraction == SPLIT_FRACTION
    assert cfg.tuning.strategy == "auto" and cfg.tuning.options() == {}


def test_flat_overrides_reach_their_section() -> None:
    cfg = FitConfig.create(epochs=3, schedule="linear", warmup=0.1, regularize="ewc", top=1)
    assert cfg.tuning.epochs == 3 and cfg.tuning.options() == {"top": 1}
    assert cfg.training.schedule.name == "linear" and cfg.training.schedule.warmup == 0.1
    assert cfg.protection.regularize == "ewc"
    assert cfg.get("schedule") == "linear" and cfg.get("epochs") == 3
    assert FitConfig().with_overrides() == FitConfig()


def test_unknown_override_names_close_ones() -> None:
    with pytest.raises(ConfigError, match="unknown option 'epoch'; did you mean epochs"):
        FitConfig.create(epoch=3)
    with pytest.raises(ConfigError, match=r"strategy_options: unknown option 'topp'.*top"):
        FitConfig.create(strategy_options={"topp": 1})


def test_strategy_options_dict_is_still_accepted() -> None:
    cfg = FitConfig.create(strategy_options={"top": 3, "lr_factor": 0.1})
    assert cfg.tuning.options() == {"top": 3, "lr_factor": 0.1}


def test_top_none_means_every_group() -> None:
    # Documented: a strategy's top=None trains every group; it used to become the default 2.
    cfg = FitConfig.create(strategy_options={"top": None})
    assert cfg.tuning.top == "all"
    assert cfg.tuning.options() == {"top": None}
    assert FitConfig.create(top="all").tuning.options() == {"top": None}


def test_json_round_trip() -> None:
    cfg = FitConfig.create(
        epochs=2, target_columns=["a", "b"], freeze_patterns=("*.bn*",), loss_weights={"x": 0.5},
        regularize_options={"temperature": 2}, schedule="plateau", out="m",
    )  # fmt: skip
    text = json.dumps(cfg.to_dict())
    assert FitConfig.from_dict(json.loads(text)) == cfg
    assert json.loads(text)["version"] == 1


def test_from_dict_rejects_unknown_keys_with_suggestions() -> None:
    with pytest.raises(ConfigError, match=r"configuration.tuning: unknown key 'epoch'.*epochs"):
        FitConfig.from_dict({"tuning": {"epoch": 1}})
    with pytest.raises(ConfigError, match=r"unknown key 'trainin'.*training"):
        FitConfig.from_dict({"trainin": {}})
    with pytest.raises(ConfigError, match="version 9"):
        FitConfig.from_dict({"version": 9})


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"batch_size": 0}, "--batch-size"),
        ({"val_fraction": 1.5}, "--val-fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "--val-fraction"),
        ({"warmup": 0.9}, "--warmup"),
        ({"top": -1}, "--top"),
        ({"bn": "sometimes"}, "--bn"),
        ({"task": "poetry"}, "--task"),
        ({"resume": True}, "--resume"),
        ({"class_weights": "heavy"}, "--class-weights"),
    ],
)
def test_bad_values_name_the_flag(overrides: dict[str, object], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        FitConfig.create(**overrides)


def test_resume_with_out_is_fine() -> None:
    assert FitConfig.create(resume=True, out="m").training.resume


def test_train_config_to_dict_nests_the_schedule() -> None:
    d = TrainConfig().to_dict()
    assert d["schedule"]["name"] == "cosine" and d["batch_size"] == 32


def test_load_from_json_file_and_bad_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(FitConfig.create(epochs=7).to_dict()))
    assert FitConfig.load(path).tuning.epochs == 7
    with pytest.raises(ConfigError, match="no such file"):
        FitConfig.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        FitConfig.load(tmp_path / "bad.json")


def test_strategy_options_list_is_the_option_fields() -> None:
    assert "top" in STRATEGY_OPTIONS and "epochs" not in STRATEGY_OPTIONS


def test_the_config_module_imports_no_torch() -> None:
    code = "import sys, graft.config, graft.record; print(sorted({'torch','timm','sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
