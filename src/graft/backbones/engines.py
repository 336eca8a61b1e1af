"""Engines for frozen passes: the same backbone forward, run the fastest way that gives the same numbers.

A frozen pass needs only the backbone's outputs, so it may run them through a faster runtime than
eager PyTorch. This registry is the one every frozen pass uses: the feature store's extraction
(and so rank, similarity, the advisor and feature-extraction fits) and ``GraftModel.predict``.
It lives with the backbones (layer 1) so that the model layer can use it too.

- ``eager``: the module as it is (the fallback, and the reference).
- ``channels_last``: NHWC memory layout for convolutions (faster oneDNN kernels on CPU); images.
- ``fused``: a copy of the module with every BatchNorm folded into the convolution before it,
  in NHWC layout (one convolution instead of two operations); images with BatchNorms.
- ``onnxruntime``: the backbone exported to ONNX and run by ONNX Runtime (when installed). An
  image backbone is exported ``pixels -> features`` with a dynamic batch axis; a text backbone's
  whole forward after trimming (encoder, pooling, normalisation: ``TextBackbone.embed``) as
  ``input_ids, attention_mask -> features`` with dynamic batch and sequence axes, so batches of
  every length (shortest texts first) run through one export, each cut after its longest text
  as eager cuts it. The export (seconds) is cached in ``$GRAFT_CACHE_DIR/engines`` (see
  :func:`onnx_model`), keyed by the backbone's weights (for text also its tokenizer and text
  settings, maximum length included), the input's shape and torch's version, and checked by its
  sha256 on every read, so a second ``graft predict`` of the same model reuses it and a damaged
  file is rebuilt.
- ``bf16``: bfloat16 autocast; images; not equivalent at :data:`TOLERANCE`, so never chosen
  automatically (ask for it with ``GRAFT_ENGINE=bf16``).

:func:`choose_engine` runs every engine the backbone's input kind takes (:data:`KIND_ENGINES`)
on the first :data:`PROBE_ROWS` rows of the first batch and keeps the fastest whose outputs match
eager within :data:`TOLERANCE`; the kept engine's probe output serves as those rows' features, so
no row is computed twice by it. A short pass (eager would finish it within
:data:`PROBE_MIN_PASS_S`) is not probed: it runs eager, and when it has more than two batches it
races the kind's cheap exact engine (:data:`RACED`: ``fused`` for images) on its second
batch and keeps the faster; within :func:`remembered_races` (``graft rank``, the advisor's size
search) a race the challenger won is not run again for that architecture.
``GRAFT_ENGINE=name`` forces one (an engine the kind does not take is an error).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import importlib.util
import io
import itertools
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import nn

from graft._registry import Registry
from graft.errors import ConfigError
from graft.io import atomic_write_bytes, atomic_write_text, cache_root

#: Largest absolute difference from eager, relative to the features' scale, that counts as equal.
TOLERANCE = 1e-4
#: Order in which :func:`choose_engine` tries engines (fastest first, measured on a 2-core CPU).
PREFERENCE = ("onnxruntime", "fused", "channels_last", "eager")
#: A pass that eager would finish within this many seconds (estimated from its probe) runs
#: eager: other engines' setup and probes cost about that (measured on 256 images at 64 px, a
#: 0.4 s eager pass took 0.95 s through ONNX Runtime and 0.54 s through channels-last).
PROBE_MIN_PASS_S = 3.0
#: The ONNX export (not yet cached) is tried only for a pass that eager would take at least
#: this many seconds over, by input kind. Exporting costs about a second (EfficientNet-Lite0
#: 1.0 s, MiniLM 1.2 s on a 2-core CPU); ONNX Runtime's gain over eager was 3-5x for Lite0 at
#: 224 px but 1.1x for MiniLM at 256 tokens, which repays the export only from a pass of about
#: 12 s. A cached export (a session build, about 0.1 s) is tried on any pass that is probed.
EXPORT_MIN_PASS_S: dict[str, float] = {"image": PROBE_MIN_PASS_S, "text": 15.0}
#: The engine a pass shorter than :data:`PROBE_MIN_PASS_S` races against eager, by input kind:
#: exact and set up in milliseconds (a copy, folded and re-laid out; no export), so trying it on
#: one batch of the pass costs almost nothing. Measured on a bare EfficientNet-Lite forward,
#: batch 64, 2 CPU threads: channels-last runs 1.2-1.7x contiguous at 64-96 px, and folding the
#: BatchNorms into the convolutions 1.35-1.67x more.
RACED: dict[str, str] = {"image": "fused"}
#: Within :func:`remembered_races`: (architecture, device type, input kind) -> the engine that
#: won the race of an earlier short pass; None outside (every short pass races).
_RACES: contextvars.ContextVar[dict[tuple[str, str, str], str] | None] = contextvars.ContextVar(
    "graft_races", default=None
)


@contextlib.contextmanager
def remembered_races() -> Iterator[None]:
    """Within this scope a short pass's race (:data:`RACED`) that the challenger won is not run
    again for that architecture, device and input kind: later passes (``graft rank``'s
    candidates, the advisor's input sizes) start with the challenger from their first batch,
    checked against eager on the probe's rows (the race costs one batch at eager's speed). A
    challenger that could not be built or differed from eager is not tried again either; one
    that lost on time races again (one batch's timing is noisy, and a lost race costs little).
    """
    token = _RACES.set({})
    try:
        yield
    finally:
        _RACES.reset(token)


def _race_key(module: nn.Module, input_kind: str) -> tuple[str, str, str]:
    arch = type(getattr(module, "model", module))
    return f"{arch.__module__}.{arch.__qualname__}", _device(module).type, input_kind


#: The engines each input kind takes. channels_last (and bf16, built on it) and fused re-lay out
#: convolution weights: images only. Text batches are token ids, which onnxruntime takes through
#: a dynamic sequence axis. A kind not listed runs eager.
KIND_ENGINES: dict[str, tuple[str, ...]] = {
    "image": ("eager", "channels_last", "fused", "onnxruntime", "bf16"),
    "text": ("eager", "onnxruntime"),
}
#: The inputs of a text backbone's ONNX export (its output is ``features``, as an image's).
TEXT_INPUTS = ("input_ids", "attention_mask")
#: How a text backbone is exported (part of its cache key: change it when the recipe changes).
TEXT_EXPORT = "embed, plain attention, v1"

Run = Callable[[torch.Tensor], np.ndarray]


@dataclass
class Engine:
    """A way to run one backbone: ``run(batch) -> (batch, dim)`` float32 features."""

    name: str
    run: Run
    close: Callable[[], None] = lambda: None


EngineFactory = Callable[[nn.Module, torch.Tensor], Engine]
ENGINES: Registry[EngineFactory] = Registry("engine")


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@ENGINES.register("eager")
def eager(module: nn.Module, example: torch.Tensor) -> Engine:
    """The module as it is."""
    device = _device(module)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> np.ndarray:
        return module(x.to(device, non_blocking=True)).float().cpu().numpy()

    return Engine("eager", run)


@ENGINES.register("channels_last")
def channels_last(module: nn.Module, example: torch.Tensor) -> Engine:
    """NHWC layout; the module's weights are converted back by ``close``."""
    device = _device(module)
    _relayout(module, torch.channels_last)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> np.ndarray:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return module(x).float().cpu().numpy()

    def close() -> None:
        _relayout(module, torch.contiguous_format)

    return Engine("channels_last", run, close)


@ENGINES.register("fused")
def fused(module: nn.Module, example: torch.Tensor) -> Engine:
    """A copy of the module with every BatchNorm folded into the convolution before it, in NHWC
    layout: one convolution instead of a convolution and a normalisation, exact up to float
    rounding (eval mode only: the running statistics are folded). A BatchNorm is folded where it
    directly follows a convolution among its parent's children, in registration order; a module
    whose forward runs them otherwise gives other numbers and is refused by the equivalence
    check. Measured on a bare EfficientNet-Lite, batch 64, 2 CPU threads: 1.35-1.67x
    channels-last alone at 64-96 px, folding in about 30 ms. A module with nothing to fold is
    refused (channels_last is that engine)."""
    pairs = _conv_bn_pairs(module)
    if not pairs:
        raise RuntimeError("no BatchNorm follows a convolution: nothing to fold")
    with torch.inference_mode(False), torch.no_grad():
        copy_ = copy.deepcopy(module).eval()
        _fold(copy_, pairs)
        copy_.to(memory_format=torch.channels_last)
    device = _device(module)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> np.ndarray:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return copy_(x).float().cpu().numpy()

    return Engine("fused", run)


def _conv_bn_pairs(module: nn.Module) -> list[tuple[str, str, str]]:
    """(parent's qualified name, convolution's name, BatchNorm's name) for every BatchNorm that
    directly follows a 2-D convolution among its parent's children."""
    pairs = []
    for prefix, parent in module.named_modules():
        names = list(parent._modules)
        for conv, norm in itertools.pairwise(names):
            a, b = parent._modules[conv], parent._modules[norm]
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and _foldable(a, b):
                pairs.append((prefix, conv, norm))
    return pairs


def _foldable(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> bool:
    return (
        norm.track_running_stats
        and norm.running_mean is not None
        and norm.running_var is not None
        and norm.num_features == conv.out_channels
    )


def _fold(module: nn.Module, pairs: list[tuple[str, str, str]]) -> None:
    """Fold each pair's BatchNorm into its convolution; the BatchNorm is replaced by what it runs
    after normalising (timm's ``BatchNormAct2d``: its dropout and activation), else nothing."""
    for prefix, conv_name, norm_name in pairs:
        parent = module.get_submodule(prefix)
        conv, norm = parent._modules[conv_name], parent._modules[norm_name]
        assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
        assert norm.running_mean is not None and norm.running_var is not None
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bias * scale + shift)
        after = [m for m in (getattr(norm, "drop", None), getattr(norm, "act", None)) if m]
        parent._modules[norm_name] = nn.Sequential(*after) if after else nn.Identity()


def _relayout(module: nn.Module, layout: torch.memory_format) -> None:
    """Convert the module's weights to ``layout`` as ordinary tensors, even when called under
    ``torch.inference_mode`` (``GraftModel.predict``): weights made there would be inference
    tensors, and the model could never train again."""
    with torch.inference_mode(False), torch.no_grad():
        module.to(memory_format=layout)


@ENGINES.register("bf16")
def bf16(module: nn.Module, example: torch.Tensor) -> Engine:
    """bfloat16 autocast (with channels-last); faster on CPUs with AVX-512 BF16 or AMX."""
    inner = channels_last(module, example)
    device = _device(module)

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return inner.run(x)

    return Engine("bf16", run, inner.close)


@ENGINES.register("onnxruntime")
def onnxruntime_engine(module: nn.Module, example: torch.Tensor) -> Engine:
    """The module exported to ONNX (cached, see :func:`onnx_model`) and run by ONNX Runtime on
    the CPU; a text backbone's batches are cut after their longest text first (its ``trim``)."""
    import onnxruntime as ort

    if _device(module).type != "cpu":
        raise RuntimeError("the onnxruntime engine runs on the CPU only")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()

    def session_of(model: bytes) -> Any:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    feed = _text_feed(module) if _takes_text(module) else _image_feed
    session = onnx_model(module, example, session_of)

    def run(x: torch.Tensor) -> np.ndarray:
        return np.asarray(session.run(["features"], feed(x))[0], dtype=np.float32)

    return Engine("onnxruntime", run)


def _image_feed(x: torch.Tensor) -> dict[str, np.ndarray]:
    return {"pixels": x.detach().cpu().numpy().astype(np.float32, copy=False)}


def _takes_text(module: nn.Module) -> bool:
    return getattr(module, "input_kind", "image") == "text"


def _text_feed(module: nn.Module) -> Callable[[torch.Tensor], dict[str, np.ndarray]]:
    """The ONNX inputs of a packed text batch ``(batch, 2, max_length)``, cut as eager cuts it."""
    trim = getattr(module, "trim", None)
    if not callable(trim) or not callable(getattr(module, "embed", None)):
        raise RuntimeError(
            f"the onnxruntime engine exports a text backbone's trim and embed; "
            f"{type(module).__name__} has none (use a TextBackbone, or GRAFT_ENGINE=eager)"
        )

    def feed(x: torch.Tensor) -> dict[str, np.ndarray]:
        ids, mask = trim(x.detach().cpu())
        return {
            name: np.ascontiguousarray(t.numpy(), dtype=np.int64)
            for name, t in zip(TEXT_INPUTS, (ids, mask), strict=True)
        }

    return feed


class _Embed(nn.Module):
    """A text backbone's ``embed(ids, mask)`` as a module's forward (what the export traces)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        backbone: Any = self.backbone
        features: torch.Tensor = backbone.embed(input_ids, attention_mask)
        return features


def _text_example(example: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two copies of the first text's first (up to) 8 tokens, the second half padded: the
    traced example has a batch and a length above 1 and a mask with zeros, so none of them is
    fixed in the graph as a constant."""
    ids, mask = (t.clone() for t in example[:1, :, :8].repeat(2, 1, 1).unbind(1))
    mask[1, max(mask.shape[1] // 2, 1) :] = 0
    return ids, mask


#: The ONNX opset of exported engines (part of the cache key).
OPSET = 17
#: Sub-folder of graft's cache folder (``$GRAFT_CACHE_DIR``) holding exported engines.
ENGINE_CACHE = "engines"
#: The cache folder of the pass in progress (``choose_engine``'s ``cache_dir``: ``--cache-dir``).
_CACHE_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("cache_dir", default=None)
#: Exported engines kept; the least recently used beyond this many are deleted (Lite0: 18 MB each,
#: minilm: 90 MB).
ENGINES_KEPT = 8
_CACHED_NAME = re.compile(r"^[0-9a-f]{32}\.(onnx|json)$")

Opened = TypeVar("Opened")


def onnx_model(
    module: nn.Module, example: torch.Tensor, open_model: Callable[[bytes], Opened]
) -> Opened:
    """``open_model`` of the module's ONNX export, read from the engine cache when it is there.

    The cache file ``<key>.onnx`` in ``$GRAFT_CACHE_DIR/engines`` is keyed by the backbone's
    identity (a hash of its weights; of a text backbone also of its tokenizer and text settings),
    the input's shape (a text batch's: ``(2, max_length)``) and dtype, the opset and torch's
    version (a text export's also by :data:`TEXT_EXPORT`, how it is made); ``<key>.json``
    beside it records the file's sha256. A file whose sha256 differs, that is missing its
    record, or that ``open_model`` refuses is never used: the module is exported again and the
    cache rewritten (each file atomically; the record last). A module without an
    ``identity()`` (not a graft backbone) and an unwritable cache export in memory only.
    """
    paths = _cache_paths(module, example)
    if paths is not None:
        cached = _read_checked(*paths)
        if cached is not None:
            with contextlib.suppress(Exception):  # a file ONNX Runtime refuses is rebuilt
                opened = open_model(cached)
                with contextlib.suppress(OSError):
                    os.utime(paths[0])  # its mtime is its "last used"
                return opened
    model = export_onnx(module, example)
    opened = open_model(model)
    if paths is not None:
        with contextlib.suppress(OSError):  # a read-only or full cache: run from memory
            atomic_write_bytes(paths[0], model)
            record = {"sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model)}
            record["backbone"] = str(getattr(getattr(module, "spec", None), "name", ""))
            record["input"] = list(example.shape[1:])
            record["inputs"] = list(TEXT_INPUTS if _takes_text(module) else ("pixels",))
            atomic_write_text(paths[1], json.dumps(record, indent=1))
            _prune(paths[0], ENGINES_KEPT)
    return opened


def export_onnx(module: nn.Module, example: torch.Tensor) -> bytes:
    """The module as an ONNX model (bytes) whose output ``features`` has a dynamic batch axis.

    An image backbone: ``pixels -> features``, dynamic batch. A text backbone
    (``input_kind == "text"``, ``example`` packed ``(batch, 2, max_length)``): its ``embed``,
    ``input_ids, attention_mask -> features``, dynamic batch and sequence (see
    :func:`_text_example` for what is traced), inside its ``exporting()`` context when it has
    one (:meth:`graft.backbones.text.TextBackbone.exporting`: plain attention).
    """
    net: nn.Module
    args: tuple[torch.Tensor, ...]
    names: tuple[str, ...]
    tracing: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if _takes_text(module):
        _text_feed(module)  # a clear error for a text module without trim and embed
        # the export restores the mode it found the wrapper in, recursively: the module's own
        net, args, names = (
            _Embed(module).train(module.training),
            _text_example(example),
            TEXT_INPUTS,
        )
        axes = {name: {0: "batch", 1: "sequence"} for name in names}
        exporting = getattr(module, "exporting", None)  # the attention ONNX Runtime runs best
        tracing = exporting() if callable(exporting) else tracing
    else:
        net, args, names = module, (example[:1].clone(),), ("pixels",)
        axes = {"pixels": {0: "batch"}}
    buffer = io.BytesIO()
    with tracing, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            args,
            buffer,  # type: ignore[arg-type]
            input_names=list(names),
            output_names=["features"],
            dynamic_axes={**axes, "features": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _export_cached(module: nn.Module, example: torch.Tensor) -> bool:
    """The module's ONNX export for this input is in the engine cache (not yet checked: a
    damaged file is rebuilt when opened, see :func:`onnx_model`)."""
    paths = _cache_paths(module, example)
    return paths is not None and all(p.is_file() for p in paths)


def _cache_paths(
    module: nn.Module, example: torch.Tensor, cache_dir: Path | None = None
) -> tuple[Path, Path] | None:
    """The cached model file and its record for this module and input, or None (no identity)."""
    identity = getattr(module, "identity", None)
    if not callable(identity):
        return None
    parts = [identity(), *map(str, example.shape[1:]), str(example.dtype), str(OPSET)]
    if _takes_text(module):
        parts.append(TEXT_EXPORT)
    key = hashlib.sha256("|".join([*parts, torch.__version__]).encode()).hexdigest()[:32]
    folder = (cache_dir or _CACHE_DIR.get() or cache_root()) / ENGINE_CACHE
    return folder / f"{key}.onnx", folder / f"{key}.json"


def clear_engines(cache_dir: Path | None = None) -> int:
    """Delete the cached exports in ``cache_dir/engines`` (only files named as graft names
    them); return the bytes freed."""
    folder = (cache_dir or cache_root()) / ENGINE_CACHE
    freed = 0
    try:
        files = [f for f in folder.iterdir() if _CACHED_NAME.match(f.name)]
    except OSError:
        return 0
    for f in sorted(files, key=lambda f: f.suffix != ".json"):  # records first
        try:
            freed += f.stat().st_size
            f.unlink()
        except OSError:
            pass
    return freed


def _prune(current: Path, keep: int) -> None:
    """Keep ``current`` and the ``keep - 1`` most recently used other engines beside it; delete
    the rest (only files named as graft names them)."""
    models = [
        f
        for f in current.parent.iterdir()
        if _CACHED_NAME.match(f.name) and f.suffix == ".onnx" and f.name != current.name
    ]
    models.sort(key=lambda f: f.stat().st_mtime, reverse=True)
    for old in models[max(keep - 1, 0) :]:
        old.with_suffix(".json").unlink(missing_ok=True)  # the record first: never a stale match
        old.unlink(missing_ok=True)


def _read_checked(model_path: Path, record_path: Path) -> bytes | None:
    """The cached bytes when the record exists and their sha256 matches it, else None."""
    try:
        expected = json.loads(record_path.read_text(encoding="utf-8"))["sha256"]
        data = model_path.read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if hashlib.sha256(data).hexdigest() == expected else None


def available(input_kind: str = "image") -> list[str]:
    """Engines that can run here for this input kind (:data:`KIND_ENGINES`), fastest first."""
    takes = KIND_ENGINES.get(input_kind, ("eager",))
    names = [n for n in PREFERENCE if n in takes]
    # Found, not imported (0.2 s, paid only by a pass that tries it; one that fails to load
    # is skipped there like any engine that cannot build).
    if importlib.util.find_spec("onnxruntime") is None:
        return [n for n in names if n != "onnxruntime"]
    return names


def equivalent(a: np.ndarray, b: np.ndarray, tolerance: float = TOLERANCE) -> bool:
    """Same shape, and every value within ``tolerance`` times the reference's scale."""
    scale = max(float(np.abs(b).max()), 1.0)
    return a.shape == b.shape and float(np.abs(a - b).max()) <= tolerance * scale


#: Rows of the first batch each engine runs in the probe. Every row the losing engines run is
#: paid for nothing: a whole batch of 64 images at 224 px through eager costs seconds per engine
#: (measured: 7.7 s of a 10.3 s pass over 256 files went into comparing engines on the full
#: first batch); a text encoder at 256 tokens takes about 0.8 s for 8 rows on a 2-core CPU.
PROBE_ROWS = 8
#: When eager would run the whole first batch in less than this, the probe takes the whole
#: batch: on small inputs the engines' speeds depend on the batch size (measured on 256 images at
#: 64 px: ONNX Runtime won the 8-row probe and then ran the pass at 0.61x eager's speed).
WHOLE_BATCH_PROBE_S = 0.5
#: A probe run shorter than this is timed again: one-off costs (kernel selection, memory
#: arenas) would dominate its first run.
RETIME_BELOW_S = 0.1


@contextlib.contextmanager
def choose_engine(
    module: nn.Module,
    first: torch.Tensor,
    *,
    input_kind: str = "image",
    files: int = 0,
    cache_dir: Path | None = None,
) -> Iterator[Engine]:
    """The fastest engine equivalent to eager on ``first`` (a real batch); restores the module.

    Every available engine for ``input_kind`` runs the first :data:`PROBE_ROWS` rows of
    ``first`` (the whole batch when eager would run it within :data:`WHOLE_BATCH_PROBE_S`): its
    output is checked against eager's and its time compared (ONNX Runtime is not always the
    fastest: measured at 64 px on a 2-core CPU it ran at 0.66x the plain loop, at 224 px at
    2.85x). The kept engine's output of that run serves its first call
    on ``first`` itself, so the pass computes no row of the first batch twice. The gates are
    on time, estimated from eager's probe and ``files``: a pass eager would finish within
    :data:`PROBE_MIN_PASS_S` is not probed: it runs eager, and one of more than two batches
    races :data:`RACED` on its second batch (see :func:`remembered_races`); the ONNX export is
    made only for a pass of at least :data:`EXPORT_MIN_PASS_S` (a cached export is tried on any
    probed pass). With ``files=0`` (unknown) the engines are probed, and ONNX Runtime only when
    its export is cached. ``GRAFT_ENGINE=name`` forces an engine for any number of files.

    Args:
        module: the backbone, in eval mode.
        first: the first batch of the pass (the equivalence check runs on its first rows).
        input_kind: the backbone's input kind; the engines it takes are in :data:`KIND_ENGINES`.
        files: how many files the pass covers (an ONNX export pays off only on many).
        cache_dir: the cache folder whose ``engines/`` keeps ONNX exports (``--cache-dir``;
            default :func:`graft.io.cache_root`).
    """
    token = _CACHE_DIR.set(cache_dir)
    try:
        yield from _choose(module, first, input_kind, files)
    finally:
        _CACHE_DIR.reset(token)


def _choose(
    module: nn.Module, first: torch.Tensor, input_kind: str, files: int
) -> Iterator[Engine]:
    forced = os.environ.get("GRAFT_ENGINE")
    if forced:
        engine = _forced(forced, input_kind)(module, first)
        try:
            yield engine
        finally:
            engine.close()
        return
    reference = eager(module, first)
    names = [n for n in available(input_kind) if n != "eager"]
    if not names:
        yield reference
        return
    probe = first[:PROBE_ROWS]
    expected, seconds = _timed(reference.run, probe, retime=False)
    races, challenger = _RACES.get(), RACED.get(input_kind)
    won = races.get(_race_key(module, input_kind)) if races is not None else None
    if won and files and files > 2 * len(first) and seconds * files / len(probe) < PROBE_MIN_PASS_S:
        # A short pass whose architecture's race is known in this scope (the estimate from the
        # probe's few rows errs long): the winner runs from the first batch, no race.
        if won == "eager":
            yield _reusing(reference, first, expected)
            return
        checked = _checked(won, module, first, expected)
        if checked is not None:
            engine, out = checked
            try:
                yield _reusing(engine, first, out)
            finally:
                engine.close()
            return
    if files and seconds * files / len(probe) >= PROBE_MIN_PASS_S:
        # A process's first forward pays one-off costs (threads, kernel selection) that made a
        # 255-image pass look long and buy an ONNX export it did not need: a long-looking pass
        # is timed again, warm, before any engine is built for it.
        seconds = min(seconds, _timed(reference.run, probe, retime=False)[1])
    if len(probe) < len(first) and seconds * len(first) / len(probe) < WHOLE_BATCH_PROBE_S:
        probe = first  # cheap rows: the whole batch times the pass faithfully
        expected, seconds = _timed(reference.run, probe, retime=False)
    estimate = seconds * files / len(probe)  # eager's pass (0: unknown); a first run: high
    if files and estimate < PROBE_MIN_PASS_S:
        # A short pass: another engine's setup and probe would cost more than it could save;
        # a pass of several batches races the kind's cheap exact engine instead (no probe).
        if challenger in names and files > 2 * len(first):
            engine = _raced(
                reference, module, first, expected, seconds / len(probe), challenger, input_kind
            )
            try:
                yield engine
            finally:
                engine.close()
        else:
            yield _reusing(reference, first, expected)
        return
    if seconds < RETIME_BELOW_S:  # engines are compared: eager's one-off costs out of its time
        seconds = _timed(reference.run, probe)[1]
        estimate = seconds * files / len(probe)
    dear = estimate >= EXPORT_MIN_PASS_S.get(input_kind, PROBE_MIN_PASS_S)
    if not dear and not _export_cached(module, first):
        names = [n for n in names if n != "onnxruntime"]  # the export would not pay for itself
    outputs, timings = {"eager": expected}, {"eager": seconds}
    kept: Engine | None = None  # the fastest so far, left open (the others are closed)
    # The ONNX export is tried first: it traces the module as it is, before another engine
    # (channels_last) re-lays it out.
    for name in sorted(names, key=lambda n: n != "onnxruntime"):
        try:
            engine = ENGINES.get(name)(module, first)
        except Exception:  # an engine that cannot take this module is skipped, eager remains
            continue
        out, seconds = _timed(engine.run, probe)
        if not equivalent(out, expected):
            engine.close()
            continue
        faster = seconds < min(timings.values())
        timings[name], outputs[name] = seconds, out
        if faster:
            if kept is not None:
                kept.close()
            kept = engine
        else:
            engine.close()
    engine = reference if kept is None else kept  # kept is None exactly when eager is fastest
    try:
        yield _reusing(engine, first, outputs[engine.name])
    finally:
        engine.close()


def _forced(name: str, input_kind: str) -> EngineFactory:
    """The engine ``GRAFT_ENGINE`` names, when this input kind takes it."""
    factory = ENGINES.get(name)  # an unknown name lists the known ones
    takes = KIND_ENGINES.get(input_kind, ("eager",))
    if ENGINES.normalize(name) not in takes:
        raise ConfigError(
            f"GRAFT_ENGINE={name}: the {name} engine does not run {input_kind} backbones; "
            f"set GRAFT_ENGINE to one of {', '.join(takes)}, or unset it to let graft choose"
        )
    return factory


def _reusing(engine: Engine, first: torch.Tensor, out: np.ndarray) -> Engine:
    """``engine``, whose first call on ``first`` itself takes ``out``, its probe's output of
    the first ``len(out)`` rows, and runs only the rows after them."""
    pending = [out]

    def run(x: torch.Tensor) -> np.ndarray:
        if pending and x is first:
            head = pending.pop()
            return (
                head if len(head) == len(x) else np.concatenate([head, engine.run(x[len(head) :])])
            )
        pending.clear()
        return engine.run(x)

    return Engine(engine.name, run, engine.close)


def _raced(
    reference: Engine,
    module: nn.Module,
    first: torch.Tensor,
    expected: np.ndarray,
    eager_row_s: float,
    challenger: str,
    input_kind: str,
) -> Engine:
    """A short pass's engine: eager on ``first`` (``expected``, its probe's output of the first
    rows, reused), then ``challenger`` on the next batch, timed, and kept for the rest of the
    pass when it matches eager on the probe's rows and is faster per row than eager was
    (``eager_row_s``, or eager's own time on the rest of ``first``); otherwise it is closed and
    eager runs on. The race costs the challenger's setup and the probe's rows, never a whole
    batch computed twice; the batch it is timed on is a batch of the pass, kept either way."""
    state: dict[str, Any] = {"current": None, "eager_row_s": eager_row_s}

    def run(x: torch.Tensor) -> np.ndarray:
        current = state["current"]
        if current is not None:
            return cast(Engine, current).run(x)
        if x is first and "head" not in state:
            state["head"] = True
            if len(expected) == len(x):
                return expected
            rest, seconds = _timed(reference.run, x[len(expected) :], retime=False)
            state["eager_row_s"] = seconds / (len(x) - len(expected))
            return np.concatenate([expected, rest])
        state["current"] = reference  # the race is run once, whatever its outcome
        rows = min(PROBE_ROWS, len(expected))
        checked = _checked(challenger, module, first[:rows], expected[:rows])
        if checked is None:
            _remember(module, input_kind, reference.name)
            return reference.run(x)
        engine = checked[0]
        out, seconds = _timed(engine.run, x, retime=False)
        if seconds / len(x) < state["eager_row_s"]:
            state["current"] = engine
            raced.name = engine.name
            _remember(module, input_kind, engine.name)
        else:  # not remembered: one batch's timing is noisy, and racing again costs one batch
            engine.close()
        return out

    def close() -> None:
        current = state["current"]
        if current is not None and current is not reference:
            cast(Engine, current).close()

    raced = Engine(reference.name, run, close)
    return raced


def _checked(
    name: str, module: nn.Module, rows: torch.Tensor, expected: np.ndarray
) -> tuple[Engine, np.ndarray] | None:
    """Engine ``name`` built on ``module`` with its output on ``rows``, when it matches eager's
    (``expected``, the first rows of ``rows``); None (closed) when it cannot be built or differs."""
    try:
        engine = ENGINES.get(name)(module, rows)
    except Exception:  # an engine that cannot take this module: eager remains
        return None
    out = engine.run(rows)
    if not equivalent(out[: len(expected)], expected):
        engine.close()
        return None
    return engine, out


def _remember(module: nn.Module, input_kind: str, winner: str) -> None:
    """Keep a race's outcome (the challenger won, or cannot run this architecture) for later
    passes within :func:`remembered_races`."""
    races = _RACES.get()
    if races is not None:
        races[_race_key(module, input_kind)] = winner


def _timed(run: Run, batch: torch.Tensor, *, retime: bool = True) -> tuple[np.ndarray, float]:
    """``run(batch)`` and its wall seconds, the speed a choice is made on; with ``retime``, a
    run shorter than :data:`RETIME_BELOW_S` is timed again (its first run pays one-off costs)."""
    started = time.perf_counter()
    out = run(batch)
    seconds = time.perf_counter() - started
    if retime and seconds < RETIME_BELOW_S:
        started = time.perf_counter()
        run(batch)
        seconds = time.perf_counter() - started
    return out, seconds
