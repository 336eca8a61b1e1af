"""A model folder from elsewhere is data: crafted folders load cleanly or fail with a named field.

Every crafted folder is loaded in one subprocess that records, through an audit hook
(:func:`sys.addaudithook`), every file it opens outside the crafted folders and every socket
connection it attempts (``socket.socket.connect`` also raises there). The test then asserts,
case by case: an :class:`~graft.errors.ArtifactError` naming the field (or a clean load for
the intact folder), no network, and no file opened outside the model folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import graft
from graft.backbones import create
from graft.model import GraftModel
from graft.tasks import Classification

SRC = str(Path(graft.__file__).resolve().parents[1])
Config = dict[str, Any]


class Payload:
    """Unpickling this runs ``touch``: a pickle renamed to safetensors must never unpickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _set(path: str, value: Any) -> Callable[[Config], None]:
    def mutate(config: Config) -> None:
        *parents, last = path.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def _timm_with(kwargs: dict[str, Any]) -> Callable[[Config], None]:
    """A timm architecture (timm itself would act on the options) with ``kwargs``."""

    def mutate(config: Config) -> None:
        config["backbone"].update(arch="test_efficientnet", kwargs=kwargs)

    return mutate


def _chained_root(config: Config) -> None:
    inner = dict(config["backbone"])
    config["backbone"] = {
        **inner,
        "source": "graft",
        "name": "graft:/etc",
        "kwargs": {
            "root": {**inner, "source": "graft"},
            "source_task": None,
            "data_config": config["data_config"],
            "chain": ["/etc"],
        },
    }


#: case -> (change to config.json, the field the error must name; None: loads cleanly)
CASES: dict[str, tuple[Callable[[Config], None], str | None]] = {
    "hub_arch": (_set("backbone.arch", "hf-hub:timm/resnet18.a1_in1k"), "backbone.arch"),
    "checkpoint_path": (
        _timm_with({"checkpoint_path": "/etc/passwd"}),
        "backbone.kwargs.checkpoint_path",
    ),
    "overlay_file": (
        _timm_with({"pretrained_cfg_overlay": {"file": "/etc/passwd"}}),
        "backbone.kwargs.pretrained_cfg_overlay.file",
    ),
    "folder_source": (_set("backbone.source", "folder:/etc"), "backbone.source"),
    "local_dir_source": (_set("backbone.source", "local-dir:/etc"), "backbone.source"),
    "unknown_arch": (_set("backbone.arch", "no_such_net_v9"), "backbone.arch"),
    "path_arch": (_set("backbone.arch", "/etc/passwd"), "backbone.arch"),
    "chained_root_source": (_chained_root, "backbone.kwargs.root.source"),
    "huge_outputs": (_set("task.num_outputs", 10**12), "task.num_outputs"),
    "zero_outputs": (_set("task.num_outputs", 0), "task.num_outputs"),
    "string_outputs": (_set("task.num_outputs", "2"), "task.num_outputs"),
    "huge_num_classes": (
        _set("backbone.kwargs", {"num_classes": 10**9}),
        "backbone.kwargs.num_classes",
    ),
    "huge_image": (_set("data_config.input_size", [1, 10**6, 10**6]), "data_config.input_size[1]"),
    "huge_channels": (_set("data_config.input_size", [10**6, 16, 16]), "data_config.input_size[0]"),
    "zero_side": (_set("data_config.input_size", [1, 0, 16]), "data_config.input_size[1]"),
    "bad_interpolation": (_set("data_config.interpolation", "evil"), "data_config.interpolation"),
    "string_crop": (_set("data_config.crop_pct", "0.9"), "data_config.crop_pct"),
    "names_mismatch": (_set("task.class_names", ["a", "b", "c"]), "task.class_names"),
    "unknown_task": (_set("task.kind", "exec"), "task.kind"),
    "string_version": (_set("format_version", "2"), "format_version"),
    "record_not_object": (_set("record", [1, 2]), "record"),
    "intact": (lambda c: None, None),
}
#: case -> (how the folder is damaged beyond config.json, what the error must say)
FILE_CASES = {
    "deep_json": "nested deeper",
    "config_is_dir": "is a directory",
    "weights_is_dir": "model.safetensors: missing",
    "truncated_safetensors": "damaged",
    "pickle_as_safetensors": "damaged",
    "huge_config": "more than a model config can be",
}

PROBE = r"""
import json, os, socket, sys
import graft
from graft.errors import ArtifactError

root, good = sys.argv[1], sys.argv[2]
graft.load(good)  # warm up: lazy imports happen here, outside the watch
allowed = [os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.argv[3]}]
events = {"opens": [], "connects": []}

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if not path.startswith(root) and not any(path.startswith(a) for a in allowed):
            events["opens"].append(path)
    elif event == "socket.connect":
        events["connects"].append(repr(args[1]))

def refuse(self, *args, **kwargs):
    raise OSError("network disabled by the hostile-artifact test")

socket.socket.connect = refuse
sys.addaudithook(hook)
results = {}
for name in sorted(os.listdir(root)):
    events["opens"].clear(); events["connects"].clear()
    try:
        graft.load(os.path.join(root, name))
        outcome = {"error": None, "message": ""}
    except ArtifactError as e:
        outcome = {"error": "ArtifactError", "message": str(e)}
    except BaseException as e:
        outcome = {"error": type(e).__name__, "message": str(e)[:500]}
    results[name] = {**outcome, "opens": list(events["opens"]), "connects": list(events["connects"])}
sys.stdout.write("RESULTS" + json.dumps(results))
"""


def _damage(folder: Path, case: str, marker: Path) -> None:
    config, weights = folder / "config.json", folder / "model.safetensors"
    if case == "deep_json":
        data = json.loads(config.read_text())
        text = json.dumps(data)[:-1] + ', "record": ' + "[" * 100_000 + "]" * 100_000 + "}"
        config.write_text(text.replace('"record": {', '"rec0": {', 1))
    elif case == "config_is_dir":
        config.unlink()
        config.mkdir()
    elif case == "weights_is_dir":
        weights.unlink()
        weights.mkdir()
    elif case == "truncated_safetensors":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif case == "pickle_as_safetensors":
        weights.write_bytes(pickle.dumps({"w": Payload(str(marker))}))
    elif case == "huge_config":
        with open(config, "ab") as f:
            f.truncate(64 << 20)  # sparse: 64 MiB of zeros after the JSON


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    base = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    backbone = create("scratch:small_cnn_gray", pretrained=False, image_size=16)
    good = GraftModel(backbone, Classification.spec_for(["a", "b"])).save(base / "good")
    crafted = base / "crafted"
    marker = base / "pickle-ran"
    for name, (mutate, _) in CASES.items():
        folder = shutil.copytree(good, crafted / name)
        config = json.loads((folder / "config.json").read_text())
        mutate(config)
        (folder / "config.json").write_text(json.dumps(config))
    for name in FILE_CASES:
        _damage(shutil.copytree(good, crafted / name), name, marker)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(crafted.resolve()), str(good), SRC],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "RESULTS" in done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULTS", 1)[1]), marker


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_config_is_refused_by_field(
    results: tuple[dict[str, Any], Path], case: str
) -> None:
    outcome = results[0][case]
    field = CASES[case][1]
    assert outcome["connects"] == [], f"{case}: tried the network: {outcome['connects']}"
    assert outcome["opens"] == [], f"{case}: opened files outside the folder: {outcome['opens']}"
    if field is None:
        assert outcome["error"] is None, outcome["message"]
        return
    assert outcome["error"] == "ArtifactError", outcome
    assert f"field {field}:" in outcome["message"], outcome["message"]
    assert "\n" not in outcome["message"]


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_damaged_folder_is_a_clean_error(results: tuple[dict[str, Any], Path], case: str) -> None:
    outcome, marker = results[0][case], results[1]
    assert outcome["connects"] == [] and outcome["opens"] == [], outcome
    assert outcome["error"] == "ArtifactError", outcome
    assert FILE_CASES[case] in outcome["message"], outcome["message"]
    assert not marker.exists(), "a pickle renamed to .safetensors was unpickled"
