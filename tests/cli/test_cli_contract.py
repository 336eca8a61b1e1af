"""Contracts of the command line: flags <-> config fields, and help that imports no torch."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from graft.cli import build_parser
from graft.cli.adapt import FLAGS as ADAPT_FLAGS
from graft.cli.fit import DISTRIBUTED
from graft.config import DistributedConfig, FitConfig, flag_name, flat_fields, iter_fields

COMMANDS = ["fit", "adapt", "predict", "evaluate", "models", "demo", "lr-find", "rank",
            "similarity", "advise", "cache", "compare"]  # fmt: skip
NOT_FIELDS = {"-h", "--help", "--config"}  # the rerun flag reads a whole configuration


def _flags(command: str) -> dict[str, str]:
    """flag -> dest of every optional argument of ``command``."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        opt: action.dest
        for action in sub.choices[command]._actions
        for opt in action.option_strings
    }


def _expected_flag(name: str, command: str) -> str:
    path = flat_fields()[name]
    f = dict(iter_fields(FitConfig))[path]
    flag = ADAPT_FLAGS.get(name, flag_name(f)) if command == "adapt" else flag_name(f)
    return "--no-" + flag.removeprefix("--") if f.default is True else flag


@pytest.mark.parametrize("command", ["fit", "adapt"])
def test_every_flag_is_a_field_and_every_field_a_flag(command: str) -> None:
    flags = _flags(command)
    fields = flat_fields()
    for flag, dest in flags.items():
        if flag not in NOT_FIELDS:
            assert dest in fields or dest in DISTRIBUTED, f"{command} {flag}: no config field"
    positional = {"unlabeled"} if command == "adapt" else set()  # adapt's TARGET argument
    for name, path in fields.items():
        f = dict(iter_fields(FitConfig))[path]
        if name in positional or f.metadata.get("api_only"):
            continue
        assert flags.get(_expected_flag(name, command)) == name, f"field {name}: no {command} flag"
    for name in DISTRIBUTED:
        assert name in {f.name for f in DistributedConfig.__dataclass_fields__.values()}
        assert flags["--" + name.replace("_", "-")] == name


def test_flags_keep_their_names() -> None:
    # The README and scripts use these spellings; they must survive the generation.
    flags = _flags("fit")
    for flag in ["--freeze", "--schedule", "--no-pretrained", "--no-retention", "--no-progress",
                 "--no-use-cache", "--no-augment", "--cpu", "--dry-run", "--label-separator",
                 "--loss-weights", "--regularize-options", "--adapt-options", "--unlabeled",
                 "--target-eval", "--ewc-data", "--devices", "--master-port"]:  # fmt: skip
        assert flag in flags, flag
    assert "--method" in _flags("adapt") and "--unlabeled" not in _flags("adapt")


def test_lr_find_flags_are_config_fields_or_its_own() -> None:
    own = {"--strategy", "--stage", "--start-lr", "--end-lr", "--steps", "--plot"}
    for flag, dest in _flags("lr-find").items():
        if flag not in NOT_FIELDS | own:
            assert dest in flat_fields(), flag


def test_flags_parse_into_the_config() -> None:
    from graft.cli.fit import config_from_args

    args = build_parser().parse_args(
        ["fit", "data", "--epochs", "3", "--top", "all", "--freeze", "a*", "--freeze", "b*",
         "--schedule", "linear", "--no-retention", "--adapt-options", "weight=0.5",
         "--target-columns", "x,y"]
    )  # fmt: skip
    cfg = config_from_args(args)
    assert cfg.tuning.epochs == 3 and cfg.tuning.top == "all"
    assert cfg.tuning.freeze_patterns == ("a*", "b*")
    assert cfg.training.schedule.name == "linear" and not cfg.protection.retention
    assert cfg.adaptation.adapt_options == {"weight": 0.5}
    assert cfg.data.target_columns == ("x", "y")
    assert cfg.output.out == "graft-runs/model", "the command always saves"
    assert config_from_args(build_parser().parse_args(["fit", "d", "--dry-run"])).output.out is None


def test_adapt_defaults() -> None:
    from graft.cli.adapt import ADAPT_DEFAULTS
    from graft.cli.fit import config_from_args

    args = build_parser().parse_args(["adapt", "src", "tgt"])
    cfg = config_from_args(args, base=ADAPT_DEFAULTS)
    assert cfg.tuning.strategy == "two_stage" and cfg.adaptation.adapt == "dann"
    assert FitConfig().tuning.strategy == "auto"


@pytest.mark.parametrize("argv", [["--help"], ["--version"]] + [[c, "--help"] for c in COMMANDS])
def test_help_and_version_import_no_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom graft.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'timm', 'sklearn'} & set(sys.modules)), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr
    assert out.stdout.strip()


def test_lr_find_api_and_cli_share_defaults_and_table_options() -> None:
    # Issue 10: the Python lr_find defaulted to auto where the CLI used two_stage, and the CLI
    # had no table column options.
    import inspect

    from graft.cli.lr_find import LR_FIND_STRATEGY
    from graft.workflows.fit import lr_find

    assert inspect.signature(lr_find).parameters["strategy"].default == LR_FIND_STRATEGY
    args = build_parser().parse_args(
        ["lr-find", "t.csv", "--label-column", "y", "--path-column", "p", "--target-columns", "a,b"]
    )
    assert (args.label_column, args.path_column, args.target_columns) == ("y", "p", ["a", "b"])
    assert args.strategy == LR_FIND_STRATEGY and args.batch_size == 32
