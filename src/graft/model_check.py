"""Checks on a saved model's ``config.json`` before anything is built: an artifact is data.

A model folder may come from anywhere. Loading it must not reach the network, open files
outside the folder or allocate what a crafted number asks for. So every field is checked
against what graft itself writes before a network is built: an allow-list of backbone sources
and constructor options (no ``hf-hub:`` or other prefixed architectures, no path options),
bounded sizes (outputs, classes, input size, channels), known interpolations, and types
(a string where a number belongs is refused). Each failure is an
:class:`~graft.errors.ArtifactError` that names the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graft.backbones.folder import PREPROCESSING_KEYS
from graft.backbones.small_cnn import is_small_cnn
from graft.backbones.small_text import is_small_text
from graft.errors import ArtifactError
from graft.tasks.base import TASKS

#: Most outputs (classes or targets) a head or a source classifier may have (ImageNet-21k fits).
MAX_OUTPUTS = 32_768
MAX_SIDE = 4096  # input height and width, pixels
MAX_CHANNELS = 16
MAX_CONFIG_BYTES = 16 << 20
MAX_DEPTH = 32  # JSON nesting (the run record is the deepest part, about 6 levels)
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "box", "hamming", "lanczos")
#: Origins graft writes in ``backbone.source``.
SOURCES = ("bundled", "timm", "random", "local", "folder", "graft", "scratch", "hf")
#: Transformer encoder families a saved text model may rebuild from its stored configuration.
HF_MODEL_TYPES = ("bert", "roberta", "distilbert", "albert", "electra", "mpnet", "xlm-roberta")
_HF_SIZES = {
    "hidden_size": 16384, "num_hidden_layers": 128, "num_attention_heads": 256,
    "intermediate_size": 65536, "vocab_size": 1_000_000, "max_position_embeddings": 65536,
}  # fmt: skip
_ARCH = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_SPEC_KEYS = {"name", "arch", "source", "pretrained", "weights", "weights_sha256", "kwargs"}
_TASK_KEYS = {
    "kind", "num_outputs", "class_names", "target_names", "target_mean", "target_std",
    "dropout", "name", "subtasks", "loss_weight", "threshold", "temperature",
}  # fmt: skip


class _Checker:
    """Field checks that name ``where`` (the config file) and the field's dotted path."""

    def __init__(self, where: Path) -> None:
        self.where = where

    def fail(self, field: str, problem: str) -> ArtifactError:
        return ArtifactError(
            f"{self.where}: field {field}: {problem}; the model folder is damaged or was not "
            "written by graft (do not load models from untrusted places)"
        )

    def mapping(self, value: Any, field: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{field}.{unknown[0]}", "is not an option graft writes")
        return value

    def integer(self, value: Any, field: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(field, f"must be a whole number, got {value!r:.60}")
        if not low <= value <= high:
            raise self.fail(field, f"must be in [{low}, {high}], got {value}")
        return value

    def number(self, value: Any, field: str, low: float, high: float) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(field, f"must be a number, got {value!r:.60}")
        if not (math.isfinite(value) and low <= value <= high):
            raise self.fail(field, f"must be a finite number in [{low}, {high}], got {value}")
        return float(value)

    def text(self, value: Any, field: str, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or len(value) > 4096:
            raise self.fail(field, f"must be a string (at most 4096 characters), got {value!r:.60}")
        return value

    def items(self, value: Any, field: str, length: int | None = None) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"must be a list, got {type(value).__name__}")
        if length is not None and len(value) != length:
            raise self.fail(field, f"must have {length} entries, got {len(value)}")
        if len(value) > MAX_OUTPUTS:
            raise self.fail(field, f"has {len(value)} entries, more than {MAX_OUTPUTS}")
        return value


def read_config_file(path: Path) -> Any:
    """The parsed ``config.json``; a directory, a huge, undecodable or deeply nested file fails."""
    if path.is_dir() or (path.exists() and not path.is_file()):
        raise ArtifactError(f"{path}: is a directory, not a file; {path.parent} is not a model")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ArtifactError(f"{path}: {size} bytes, more than a model config can be; refused")
    try:
        config = json.loads(path.read_bytes())
    except RecursionError:
        raise ArtifactError(f"{path}: nested deeper than {MAX_DEPTH} levels; refused") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: damaged ({e}); save the model again") from e
    if _depth(config) > MAX_DEPTH:
        raise ArtifactError(f"{path}: nested deeper than {MAX_DEPTH} levels; refused")
    return config


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack += [(child, level + 1) for child in children]
    return deepest


def check_format_version(config: dict[str, Any], where: Path, newest: int) -> int:
    """The config's ``format_version``: a whole number from 1 to ``newest``."""
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Checker(where).fail("format_version", f"must be a whole number, got {version!r:.40}")
    return version


def check_model_config(config: dict[str, Any], where: Path) -> dict[str, Any]:
    """A copy of ``config`` whose backbone, data_config and task fields passed every check.

    Raises:
        ArtifactError: the first field that graft would not have written (named in the message).
    """
    c = _Checker(where)
    for key in ("backbone", "data_config", "task"):
        if key not in config:
            raise c.fail(key, "is missing")
    backbone = check_spec(c, config["backbone"], "backbone", root=True)
    check_data_config(c, config["data_config"], "data_config")
    check_task(c, config["task"], "task", depth=0)
    return {**config, "backbone": backbone}


def check_spec(c: _Checker, value: Any, field: str, *, root: bool) -> dict[str, Any]:
    """A backbone spec with an allowed source, a known architecture and allowed options only."""
    spec = dict(c.mapping(value, field, _SPEC_KEYS))
    for key in ("name", "arch", "source"):
        c.text(spec.get(key), f"{field}.{key}")
    if spec["source"] not in SOURCES or (spec["source"] == "graft" and not root):
        raise c.fail(f"{field}.source", f"{spec['source']!r:.60} is not a source graft writes")
    if not isinstance(spec.get("pretrained", True), bool):
        raise c.fail(f"{field}.pretrained", "must be true or false")
    c.text(spec.get("weights"), f"{field}.weights", optional=True)
    c.text(spec.get("weights_sha256"), f"{field}.weights_sha256", optional=True)
    kwargs = spec.get("kwargs", {})
    # a text encoder: pretrained (hf) or randomly initialised from its stored configuration
    encoder = spec["source"] == "hf" or (
        spec["source"] == "random" and isinstance(kwargs, dict) and "config" in kwargs
    )
    if encoder or spec["source"] == "graft":  # a saved model's arch is its root's, checked there
        if not _ARCH.match(spec["arch"]):
            raise c.fail(f"{field}.arch", f"{spec['arch']!r:.80} is not a plain architecture name")
    else:
        check_arch(c, spec["arch"], f"{field}.arch")
    source = "hf" if encoder else spec["source"]
    spec["kwargs"] = check_kwargs(c, kwargs, f"{field}.kwargs", source)
    if source == "graft" and spec["arch"] != spec["kwargs"]["root"]["arch"]:
        raise c.fail(f"{field}.arch", "differs from its root backbone's architecture")
    return spec


def check_arch(c: _Checker, arch: str, field: str) -> None:
    """An architecture name graft can build offline: a small CNN or a registered timm model."""
    if not _ARCH.match(arch):  # no "hf-hub:", no paths: a plain registered name only
        raise c.fail(field, f"{arch!r:.80} is not a plain architecture name")
    if is_small_cnn(arch) or is_small_text(arch):
        return
    import timm

    if not timm.is_model(arch):
        raise c.fail(field, f"{arch!r} is not an architecture this timm ({timm.__version__}) knows")


def check_kwargs(c: _Checker, value: Any, field: str, source: str) -> dict[str, Any]:
    """Constructor options graft writes, checked and bounded (no path or weight location)."""
    if source == "graft":
        kw = dict(c.mapping(value, field, {"root", "source_task", "data_config", "chain", "text"}))
        kw["root"] = check_spec(c, kw.get("root"), f"{field}.root", root=False)
        if "text" in kw:  # a saved text model as the source: its text settings
            _text_settings(c, kw["text"], f"{field}.text")
        if kw.get("source_task") is not None:
            check_task(c, kw["source_task"], f"{field}.source_task", depth=0)
        check_data_config(c, kw.get("data_config"), f"{field}.data_config")
        for i, hop in enumerate(c.items(kw.get("chain", []), f"{field}.chain")):
            c.text(hop, f"{field}.chain[{i}]")
        return kw
    if source == "hf":
        return _hf_kwargs(c, value, field)
    if isinstance(value, dict) and "text" in value:  # the small text network (scratch)
        return _small_text_kwargs(c, value, field)
    allowed = {"num_classes", "bn_eps", "in_chans", "widths", "drop_rate", "drop_path_rate"}
    allowed |= {"global_pool", "pretrained_cfg_overlay", "img_size"}
    kw = dict(c.mapping(value, field, allowed))
    checks = {
        "num_classes": lambda v, f: c.integer(v, f, 0, MAX_OUTPUTS),
        "in_chans": lambda v, f: c.integer(v, f, 1, MAX_CHANNELS),
        "bn_eps": lambda v, f: c.number(v, f, 1e-12, 1.0),
        "drop_rate": lambda v, f: c.number(v, f, 0.0, 1.0),
        "drop_path_rate": lambda v, f: c.number(v, f, 0.0, 1.0),
        "global_pool": lambda v, f: _pool(c, v, f),
        "img_size": lambda v, f: c.integer(v, f, 8, MAX_SIDE),
        "pretrained_cfg_overlay": lambda v, f: _overlay(c, v, f),
        "widths": lambda v, f: [
            c.integer(w, f"{f}[{i}]", 1, 4096) for i, w in enumerate(c.items(v, f)[:9])
        ],
    }
    for key, val in kw.items():
        checks[key](val, f"{field}.{key}")
    if "widths" in kw and len(kw["widths"]) > 8:
        raise c.fail(f"{field}.widths", "has more than 8 stages")
    return kw


def _hf_kwargs(c: _Checker, value: Any, field: str) -> dict[str, Any]:
    """A text encoder rebuilt from its stored configuration: a known family, bounded sizes, no
    remote code (``auto_map``), text settings of plain values."""
    kw = dict(c.mapping(value, field, {"text", "config"}))
    config = kw.get("config")
    if not isinstance(config, dict):
        raise c.fail(f"{field}.config", "must be an object")
    if config.get("model_type") not in HF_MODEL_TYPES:
        raise c.fail(f"{field}.config.model_type", f"must be one of {', '.join(HF_MODEL_TYPES)}")
    if "auto_map" in config or config.get("trust_remote_code"):
        raise c.fail(f"{field}.config.auto_map", "remote code is never run when loading")
    for key, high in _HF_SIZES.items():
        if key in config:
            c.integer(config[key], f"{field}.config.{key}", 1, high)
    _text_settings(c, kw.get("text"), f"{field}.text")
    return kw


def _small_text_kwargs(c: _Checker, value: Any, field: str) -> dict[str, Any]:
    """The small text network's sizes (bounded) and its text settings."""
    kw = dict(c.mapping(value, field, {"text", "vocab_size", "dim", "width", "kernel"}))
    c.integer(kw.get("vocab_size"), f"{field}.vocab_size", 1, _HF_SIZES["vocab_size"])
    for key in ("dim", "width", "kernel"):
        c.integer(kw.get(key), f"{field}.{key}", 1, 4096)
    _text_settings(c, kw.get("text"), f"{field}.text")
    return kw


def _text_settings(c: _Checker, text: Any, field: str) -> None:
    """Text settings (max length, pooling, ...) of plain values."""
    if not isinstance(text, dict):
        raise c.fail(field, "must be an object")
    for key, val in text.items():
        if isinstance(val, int | float) and not isinstance(val, bool):
            c.number(val, f"{field}.{key}", 0, 1 << 20)
        elif not isinstance(val, str | bool) and val is not None:
            raise c.fail(f"{field}.{key}", "must be a number, text or true/false")


def _pool(c: _Checker, value: Any, field: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{0,16}", value):
        raise c.fail(field, f"{value!r:.40} is not a pooling name")
    return value


def _overlay(c: _Checker, value: Any, field: str) -> None:
    """Preprocessing metadata only: no key that says where weights come from (file, url, hub)."""
    for key, v in c.mapping(value, field, set(PREPROCESSING_KEYS)).items():
        flat = v if isinstance(v, list) else [v]
        if len(flat) > 8 or not all(x is None or isinstance(x, str | int | float) for x in flat):
            raise c.fail(f"{field}.{key}", "must be a short value or list of values")
        for x in flat:
            if isinstance(x, str):
                c.text(x, f"{field}.{key}")


def check_data_config(c: _Checker, value: Any, field: str) -> None:
    """Input size (channels, height, width) bounded, mean/std per channel, a known filter."""
    keys = {"input_size", "mean", "std", "interpolation", "crop_pct"}
    d = c.mapping(value, field, keys)
    size = c.items(d.get("input_size"), f"{field}.input_size", 3)
    channels = c.integer(size[0], f"{field}.input_size[0]", 1, MAX_CHANNELS)
    for i in (1, 2):
        c.integer(size[i], f"{field}.input_size[{i}]", 8, MAX_SIDE)
    for key, low in (("mean", -10.0), ("std", 1e-6)):
        for i, v in enumerate(c.items(d.get(key), f"{field}.{key}", channels)):
            c.number(v, f"{field}.{key}[{i}]", low, 10.0)
    interpolation = d.get("interpolation", "bicubic")
    if interpolation not in INTERPOLATIONS:
        raise c.fail(
            f"{field}.interpolation",
            f"{interpolation!r:.40} is not one of {', '.join(INTERPOLATIONS)}",
        )
    c.number(d.get("crop_pct", 1.0), f"{field}.crop_pct", 1e-3, 1.0)


def check_task(c: _Checker, value: Any, field: str, *, depth: int) -> None:
    """A registered task kind, a bounded number of outputs, names that match the head."""
    t = c.mapping(value, field, _TASK_KEYS)
    kind = c.text(t.get("kind"), f"{field}.kind")
    if kind not in TASKS:
        raise c.fail(f"{field}.kind", f"{kind!r:.40} is not a task this graft knows")
    n = c.integer(t.get("num_outputs"), f"{field}.num_outputs", 1, MAX_OUTPUTS)
    for key in ("class_names", "target_names"):
        if t.get(key) is not None:
            for i, name in enumerate(c.items(t[key], f"{field}.{key}", n)):
                c.text(name, f"{field}.{key}[{i}]")
    for key, low in (("target_mean", -1e38), ("target_std", 0.0)):
        if t.get(key) is not None:
            for i, v in enumerate(c.items(t[key], f"{field}.{key}", n)):
                c.number(v, f"{field}.{key}[{i}]", low, 1e38)
    c.number(t.get("dropout", 0.0), f"{field}.dropout", 0.0, 0.999)
    c.number(t.get("loss_weight", 1.0), f"{field}.loss_weight", 0.0, 1e6)
    c.number(t.get("threshold", 0.5), f"{field}.threshold", 0.0, 1.0)
    c.number(t.get("temperature", 1.0), f"{field}.temperature", 1e-3, 1e3)
    c.text(t.get("name"), f"{field}.name", optional=True)
    if t.get("subtasks") is not None:
        if depth > 0:
            raise c.fail(f"{field}.subtasks", "a subtask cannot have subtasks")
        for i, sub in enumerate(c.items(t["subtasks"], f"{field}.subtasks")[:65]):
            check_task(c, sub, f"{field}.subtasks[{i}]", depth=depth + 1)


@contextmanager
def offline() -> Iterator[None]:
    """No model hub while a saved model loads (timm and transformers honour these)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update({k: "1" for k in names})
    hub = _hub_constants()
    before = getattr(hub, "HF_HUB_OFFLINE", None)
    if hub is not None:
        hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if hub is not None:
            hub.HF_HUB_OFFLINE = before


def _hub_constants() -> Any:
    import sys

    return sys.modules.get("huggingface_hub.constants")
