"""Building backbones by name: bundled weights, any timm model, or a local weights file.

Weights never silently fall back to random initialisation: a pretrained backbone whose weights
cannot be had is a :class:`~graft.errors.BackboneError` that says what to do instead.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from torch import nn

from graft.backbones import graft_source
from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.backbones.bundled import BUNDLED, BundledBackbone
from graft.backbones.groups import layer_groups
from graft.backbones.small_cnn import build_small_cnn, is_small_cnn, no_pretrained_error
from graft.backbones.weights import (
    file_sha256,
    load_checked,
    map_by_position,
    read_state_dict,
    strip_prefix_to_fit,
)
from graft.config import DEFAULT_BACKBONE
from graft.errors import BackboneError, ConfigError

USAGE = """\
any timm architecture: --backbone timm:<name> (or the bare name), e.g. timm:resnet50;
  timm fetches its pretrained weights when a model hub is reachable.
local weights for a timm architecture: --backbone timm:<name> --weights PATH
  (.safetensors, or a state dict saved with torch.save; "module."/"state_dict" wrappers are fine).
random initialisation: --no-pretrained (pretrained=False).
a small CNN for small images, trained from scratch: --backbone small_cnn --no-pretrained
  (small_cnn_gray for 1-channel images).
a saved graft model as the source: --backbone path/to/model (its backbone and its head)."""

_FIXES = (
    "pass weights=PATH (CLI --weights PATH) with a local .safetensors or state-dict file for "
    f"this architecture, use the bundled {DEFAULT_BACKBONE!r} (works offline), or "
    "pretrained=False (CLI --no-pretrained) for random initialisation"
)


def create(
    name: str | Backbone = DEFAULT_BACKBONE,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    image_size: int | None = None,
) -> Backbone:
    """A backbone by name, with its preprocessing and ordered layer groups, in eval mode.

    Args:
        name: a bundled name (``efficientnet_lite0``), ``timm:<name>`` or a bare timm name, or
            a built Backbone (returned as is, with ``image_size`` applied).
        pretrained: load pretrained weights; False gives a random initialisation.
        weights: a local weights file for the architecture (overrides the default weights).
        image_size: square input size; overrides the weights' default (``--image-size``).

    Example:
        >>> bb = create("efficientnet_lite0")  # doctest: +SKIP
        >>> bb(torch.randn(2, 3, 224, 224)).shape  # doctest: +SKIP
        torch.Size([2, 1280])
    """
    if isinstance(name, Backbone):
        if image_size is not None:
            name.data_config = name.data_config.with_image_size(image_size)
        return name
    if weights is not None and not pretrained:
        raise ConfigError("weights= (--weights) and pretrained=False (--no-pretrained) conflict")
    if graft_source.is_graft_model(name):
        return graft_source.create(
            name, pretrained=pretrained, weights=weights, image_size=image_size
        )
    arch, entry = _resolve(name)
    kwargs = dict(entry.arch_kwargs) if entry else {}
    canonical = entry.name if entry else (arch if is_small_cnn(arch) else f"timm:{arch}")
    if weights is not None:
        model, spec = _from_local(canonical, arch, kwargs, Path(weights))
    elif not pretrained:
        model = _build(arch, kwargs)
        spec = BackboneSpec(canonical, arch, "random", pretrained=False, kwargs=kwargs)
    elif entry is not None:
        model = _build(arch, kwargs)
        spec = _load_bundled(model, entry)
    else:
        model, spec = _from_hub(canonical, arch)
    return _assemble(model, spec, entry, image_size)


def from_spec(spec: BackboneSpec, *, load_weights: bool) -> Backbone:
    """Rebuild a backbone from its spec (e.g. from a saved model's JSON).

    Args:
        spec: the spec recorded when the backbone was created.
        load_weights: also load the original weights (bundled, hub or local file, checked
            against the recorded sha256); False builds the architecture only, for an
            artifact that loads its own state dict.
    """
    entry = BUNDLED.get(spec.name) if spec.name in BUNDLED else None
    if spec.source == "graft":
        return graft_source.from_spec(spec, load_weights=load_weights)
    if not load_weights or spec.source == "random":
        return _assemble(_build(spec.arch, spec.kwargs), spec, entry, None)
    if spec.source == "bundled" and entry is not None:
        model = _build(spec.arch, spec.kwargs)
        rebuilt = _load_bundled(model, entry)
        _check_sha(spec, rebuilt.weights_sha256, rebuilt.weights)
    elif spec.source == "timm":
        model, _ = _from_hub(spec.name, spec.arch)
    elif spec.source == "local" and spec.weights:
        model = _build(spec.arch, spec.kwargs)
        _check_sha(spec, file_sha256(spec.weights), spec.weights)
        _load_local(model, read_state_dict(spec.weights), Path(spec.weights))
    else:
        raise BackboneError(f"cannot load weights for backbone source {spec.source!r}")
    return _assemble(model, spec, entry, None)


def list_bundled() -> list[dict[str, Any]]:
    """Bundled backbones (work offline): name, description, params, feature_dim, source, license."""
    return [entry.summary() for _, entry in BUNDLED.items()]


def _resolve(name: str) -> tuple[str, BundledBackbone | None]:
    import timm

    raw = name.strip()
    if raw.lower().startswith("timm:"):
        arch = raw[len("timm:") :].strip()
        if timm.is_model(arch):
            return arch, None
        raise BackboneError(_unknown_message(name, arch))
    if raw in BUNDLED:
        entry = BUNDLED.get(raw)
        return entry.arch, entry
    if is_small_cnn(raw):
        return raw, None
    if timm.is_model(raw):
        return raw, None
    raise BackboneError(_unknown_message(name, raw))


def _unknown_message(name: str, arch: str) -> str:
    import timm

    close = difflib.get_close_matches(arch.lower(), timm.list_models(), n=5, cutoff=0.6)
    hint = f" Close timm models: {', '.join(close)}." if close else ""
    return (
        f"unknown backbone {name!r}.{hint} Bundled (offline): {', '.join(BUNDLED)}. "
        "From scratch: small_cnn, small_cnn_gray (with --no-pretrained). A saved graft model: "
        "its folder. "
        "Any timm model works as timm:<name>; list them with timm.list_models('pattern*')."
    )


def _build(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    import timm

    if is_small_cnn(arch):
        return build_small_cnn(arch, kwargs)
    return timm.create_model(arch, pretrained=False, **kwargs)


def _load_bundled(model: nn.Module, entry: BundledBackbone) -> BackboneSpec:
    path = entry.weights_file()
    state = read_state_dict(path)
    if entry.positional:
        state = map_by_position(state, model.state_dict(), path)
    load_checked(model, state, path)
    return BackboneSpec(
        entry.name,
        entry.arch,
        "bundled",
        weights=path.name,
        weights_sha256=file_sha256(path),
        kwargs=dict(entry.arch_kwargs),
    )


def _from_hub(name: str, arch: str) -> tuple[nn.Module, BackboneSpec]:
    import timm
    from timm.models import get_pretrained_cfg

    if is_small_cnn(arch):
        raise no_pretrained_error(name)
    cfg = get_pretrained_cfg(arch)
    where = cfg and (cfg.hf_hub_id or cfg.url or cfg.file)
    if not where:
        # timm would warn and return random weights; graft refuses to do that silently.
        raise BackboneError(f"timm has no pretrained weights for {arch!r}; {_FIXES}")
    try:
        model = timm.create_model(arch, pretrained=True)
    except Exception as e:  # hub, HTTP, SSL and file errors differ by timm/huggingface version
        reason = str(e).splitlines()[0][:200] if str(e) else ""
        raise BackboneError(
            f"could not fetch pretrained weights for timm model {arch!r} from {where} "
            f"({type(e).__name__}: {reason}); no network? {_FIXES} "
            "(HF_HUB_OFFLINE=1 skips the hub's network retries)"
        ) from e
    return model, BackboneSpec(name, arch, "timm", weights=str(where))


def _from_local(
    name: str, arch: str, kwargs: dict[str, Any], path: Path
) -> tuple[nn.Module, BackboneSpec]:
    state = read_state_dict(path)
    model = _build(arch, kwargs)
    state = strip_prefix_to_fit(state, set(model.state_dict()))
    classes = _file_num_classes(model, state)
    if classes is not None:
        # Keep the file's own classifier (its source task) instead of dropping it.
        kwargs = {**kwargs, "num_classes": classes}
        model = _build(arch, kwargs)
    _load_local(model, state, path)
    spec = BackboneSpec(
        name,
        arch,
        "local",
        weights=str(path.resolve()),
        weights_sha256=file_sha256(path),
        kwargs=kwargs,
    )
    return model, spec


def _load_local(model: nn.Module, state: dict[str, Any], path: Path) -> None:
    load_checked(model, strip_prefix_to_fit(state, set(model.state_dict())), path)


def _file_num_classes(model: nn.Module, state: dict[str, Any]) -> int | None:
    """The file's classifier size when it differs from the architecture's (0 if it has none)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    heads = cfg.get("classifier") or ()
    head = heads if isinstance(heads, str) else (heads[0] if heads else None)
    current = int(getattr(model, "num_classes", 0) or 0)
    if head is None:
        return None
    weight = state.get(f"{head}.weight")
    if weight is None:
        return 0 if current else None
    return int(weight.shape[0]) if int(weight.shape[0]) != current else None


def _check_sha(spec: BackboneSpec, actual: str | None, where: str | None) -> None:
    if spec.weights_sha256 and actual != spec.weights_sha256:
        raise BackboneError(
            f"{where}: weights changed since backbone {spec.name!r} was saved (sha256 "
            f"{(actual or '?')[:12]} != {spec.weights_sha256[:12]}); use the original file"
        )


def _assemble(
    model: nn.Module, spec: BackboneSpec, entry: BundledBackbone | None, image_size: int | None
) -> Backbone:
    data_config = entry.data_config if entry is not None else _timm_data_config(model)
    try:
        data_config = data_config.with_image_size(image_size)
    except ValueError as e:
        raise ConfigError(f"image_size (--image-size): {e}") from e
    backbone = Backbone(model, spec, data_config, layer_groups(model))
    return backbone.eval()


def _timm_data_config(model: nn.Module) -> DataConfig:
    from timm.data import resolve_model_data_config

    cfg = resolve_model_data_config(model)
    return DataConfig(
        input_size=tuple(cfg["input_size"]),
        mean=tuple(float(m) for m in cfg["mean"]),
        std=tuple(float(s) for s in cfg["std"]),
        interpolation=str(cfg.get("interpolation", "bicubic")),
        crop_pct=float(cfg.get("crop_pct", 1.0)),
    )
