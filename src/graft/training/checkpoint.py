"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint holds the model's weights, the optimizer and scheduler states, the stage's best
weights so far, and where training stands (stage, epoch, early-stopping counters, history).
It is written atomically after every epoch, so ``--resume`` continues from the last finished
epoch and, with the same seed, ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch

from graft.errors import ArtifactError, ConfigError
from graft.io import atomic_dir

TENSORS = "tensors.safetensors"
STATE = "state.json"


def flatten(tree: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """Replace every tensor in a nested dict/list by a reference; collect tensors by key."""
    if isinstance(tree, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = tree.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(tree, dict):
        return {
            "__dict__": [
                [k, flatten(v, tensors, f"{prefix}.{i}")] for i, (k, v) in enumerate(tree.items())
            ]
        }
    if isinstance(tree, list | tuple):
        items = [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(tree)]
        return {"__tuple__": items} if isinstance(tree, tuple) else items
    return tree


def unflatten(tree: Any, tensors: Mapping[str, torch.Tensor | None]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__dict__" in tree:
            return {k: unflatten(v, tensors) for k, v in tree["__dict__"]}
        if "__tuple__" in tree:
            return tuple(unflatten(v, tensors) for v in tree["__tuple__"])
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts/lists of tensors and JSON values) atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors)
    # safetensors refuses tensors that share memory; clone so every entry owns its storage.
    tensors = {k: v.clone() for k, v in tensors.items()}
    with atomic_dir(directory) as tmp:
        save_file(tensors, str(tmp / TENSORS))
        (tmp / STATE).write_text(json.dumps(skeleton, default=_default))
    return Path(directory)


def is_checkpoint(folder: Path) -> bool:
    """True for a folder :func:`save_checkpoint` wrote (its two files and nothing else), or a
    run's checkpoint folder holding only such folders (``last``; hidden leftovers of a killed
    write aside)."""
    try:
        names = {p.name for p in folder.iterdir()}
        if names == {TENSORS, STATE}:
            return True
        shown = [folder / n for n in names if not n.startswith(".")]
        return bool(shown) and all(p.is_dir() and is_checkpoint(p) for p in shown)
    except OSError:
        return False


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory)
    try:
        skeleton = json.loads((path / STATE).read_text())
        tensors = load_file(str(path / TENSORS))
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: no checkpoint to resume from; run without --resume to start fresh"
        ) from None
    except (json.JSONDecodeError, SafetensorError, OSError) as e:
        raise ArtifactError(f"{path}: damaged checkpoint ({e}); remove it to start fresh") from e
    return unflatten(skeleton, tensors)


def read_state(directory: str | Path) -> dict[str, Any]:
    """A checkpoint's values with every tensor left out (None), read from its ``state.json``
    alone: one small file replaced atomically, so a process watching a running fit (its epoch,
    its stage) never races the fit replacing the tensors' file. Raises what reading and
    parsing that file raise (missing, or mid-replacement)."""
    skeleton = json.loads((Path(directory) / STATE).read_text())
    return cast(dict[str, Any], unflatten(skeleton, defaultdict(lambda: None)))


def run_fingerprint(model: Any, plan: Any) -> dict[str, Any]:
    """What a checkpoint must share with the run resuming it: classes, image size, plan, backbone."""
    from dataclasses import asdict

    spec = model.task_spec
    return json.loads(
        json.dumps(
            {
                "task": spec.kind,
                "classes": list(spec.class_names or []),
                "outputs": spec.num_outputs,
                "image size": list(model.data_config.input_size),
                "backbone": model.backbone.spec.arch,
                "plan": {
                    "strategy": plan.strategy,
                    "groups": list(plan.groups),
                    "stages": [asdict(s) for s in plan.stages],
                },
            },
            default=_default,
        )
    )


def check_fingerprint(where: str | Path, saved: Any, current: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint written by another run, naming what differs.

    Raises:
        ConfigError: classes, image size, plan or backbone differ from the checkpoint's.
    """
    if not isinstance(saved, dict):
        return  # a checkpoint from before fingerprints: nothing to compare
    differs = [
        f"{key} (checkpoint: {_short(saved.get(key))}; this run: {_short(value)})"
        for key, value in current.items()
        if saved.get(key) != value
    ]
    if differs:
        raise ConfigError(
            f"--resume: the checkpoint in {where} belongs to another run; "
            f"{', '.join(differs)}. Run with the same options, or without --resume "
            "(or another --checkpoint-dir) to start fresh"
        )


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable in a checkpoint: {type(o).__name__}")
