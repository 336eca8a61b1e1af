"""Reading weight files safely (safetensors or tensors-only torch files) and checking their fit."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from graft.errors import BackboneError

_WRAPPERS = ("state_dict", "model", "model_state_dict", "module")
_SHOWN = 5


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, computed once per process for a given path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    return _sha256(str(p), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a torch state dict, without full unpickling.

    A ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper and a ``module.`` prefix (from
    DataParallel/DDP) are removed.
    """
    p = Path(path)
    if not p.is_file():
        raise BackboneError(f"{p}: weights file not found; pass --weights with an existing file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: object = load_file(str(p), device="cpu")
        else:
            raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise BackboneError(
            f"{p}: cannot read weights ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "use a .safetensors file or a state dict saved with torch.save(model.state_dict())"
        ) from e
    return _unwrap(raw, p)


def _unwrap(raw: object, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(raw, Mapping):
        inner = next((raw[k] for k in _WRAPPERS if isinstance(raw.get(k), Mapping)), None)
        if inner is None:
            break
        raw = inner
    if not isinstance(raw, Mapping) or not raw:
        raise BackboneError(f"{path}: not a state dict (expected a mapping of names to tensors)")
    tensors = {str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise BackboneError(f"{path}: holds no tensors; is it a state dict?")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def strip_prefix_to_fit(
    state: dict[str, torch.Tensor], expected: set[str]
) -> dict[str, torch.Tensor]:
    """Drop a shared ``model.`` / ``backbone.model.`` prefix when that makes the names fit."""
    for prefix in ("backbone.model.", "model."):
        if all(k.startswith(prefix) for k in state):
            stripped = {k[len(prefix) :]: v for k, v in state.items()}
            if len(expected & set(stripped)) > len(expected & set(state)):
                return stripped
    return state


def load_checked(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load ``state`` strictly, naming the file and the first offending keys on a mismatch."""
    target = model.state_dict()
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in target.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{label} ({len(keys)}): {', '.join(keys[:_SHOWN])}{' ...' if len(keys) > _SHOWN else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
        if keys
    ]
    if problems:
        arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        raise BackboneError(
            f"{path}: weights do not fit architecture {arch!r}: {'; '.join(problems)}. "
            "Check that --backbone names the architecture the file was trained with."
        )
    full = {k: state.get(k, v) for k, v in target.items()}
    model.load_state_dict(full, strict=True)


def map_by_position(
    source: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor], path: str | Path
) -> dict[str, torch.Tensor]:
    """Rename ``source`` to ``target``'s keys by position, verifying every shape."""
    if len(source) != len(target):
        raise BackboneError(
            f"{path}: {len(source)} tensors where the architecture has {len(target)}; "
            "the bundled weights file is damaged or from another version — reinstall it"
        )
    out = {}
    for (skey, sval), (tkey, tval) in zip(source.items(), target.items(), strict=True):
        if sval.shape != tval.shape:
            raise BackboneError(
                f"{path}: tensor {skey} {tuple(sval.shape)} does not fit {tkey} "
                f"{tuple(tval.shape)}; the bundled weights file is damaged — reinstall it"
            )
        out[tkey] = sval
    return out
