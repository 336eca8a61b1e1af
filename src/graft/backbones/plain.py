"""What the timm-like sources share: building an architecture, local weights, assembling.

The bundled, timm and scratch sources all name an architecture that ``timm.create_model`` (or
:func:`~graft.backbones.small_cnn.build_small_cnn`) builds, accept a local weights file
(``--weights``) and random initialisation (``--no-pretrained``), and wrap the network in a
:class:`Backbone` with its preprocessing and layer groups. Their own weights (a bundled file, the
model hub) are their own business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.backbones.groups import layer_groups
from graft.backbones.small_cnn import build_small_cnn, is_small_cnn
from graft.backbones.weights import file_sha256, load_checked, read_state_dict, strip_prefix_to_fit
from graft.config import DEFAULT_BACKBONE
from graft.errors import BackboneError, ConfigError

FIXES = (
    "pass weights=PATH (CLI --weights PATH) with a local .safetensors or state-dict file for "
    f"this architecture, use the bundled {DEFAULT_BACKBONE!r} (works offline), or "
    "pretrained=False (CLI --no-pretrained) for random initialisation"
)


def build_arch(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    """A randomly initialised network of architecture ``arch``."""
    if is_small_cnn(arch):
        return build_small_cnn(arch, kwargs)
    import timm

    return timm.create_model(arch, pretrained=False, **kwargs)


def build_plain(
    canonical: str,
    arch: str,
    kwargs: dict[str, Any],
    *,
    pretrained: bool,
    weights: Path | None,
) -> tuple[nn.Module, BackboneSpec] | None:
    """The network and spec for ``--weights`` or ``--no-pretrained``; None: the source's own."""
    if weights is not None:
        return from_local(canonical, arch, kwargs, weights)
    if not pretrained:
        model = build_arch(arch, kwargs)
        return model, BackboneSpec(canonical, arch, "random", pretrained=False, kwargs=kwargs)
    return None


def rebuild_plain(spec: BackboneSpec, *, load_weights: bool) -> nn.Module | None:
    """The network of a ``random``/``local`` spec or any spec without weights; else None."""
    if not load_weights or spec.source == "random":
        return build_arch(spec.arch, spec.kwargs)
    if spec.source == "local" and spec.weights:
        model = build_arch(spec.arch, spec.kwargs)
        check_sha(spec, file_sha256(spec.weights), spec.weights)
        load_local(model, read_state_dict(spec.weights), Path(spec.weights))
        return model
    return None


def from_local(
    name: str, arch: str, kwargs: dict[str, Any], path: Path
) -> tuple[nn.Module, BackboneSpec]:
    """The architecture with a local weights file (keeps the file's own classifier size)."""
    state = read_state_dict(path)
    model = build_arch(arch, kwargs)
    state = strip_prefix_to_fit(state, set(model.state_dict()))
    classes = _file_num_classes(model, state)
    if classes is not None:
        # Keep the file's own classifier (its source task) instead of dropping it.
        kwargs = {**kwargs, "num_classes": classes}
        model = build_arch(arch, kwargs)
    load_local(model, state, path)
    spec = BackboneSpec(
        name,
        arch,
        "local",
        weights=str(path.resolve()),
        weights_sha256=file_sha256(path),
        kwargs=kwargs,
    )
    return model, spec


def load_local(model: nn.Module, state: dict[str, Any], path: Path) -> None:
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


def check_sha(spec: BackboneSpec, actual: str | None, where: str | None) -> None:
    """Refuse weights that changed since ``spec`` was recorded."""
    if spec.weights_sha256 and actual != spec.weights_sha256:
        raise BackboneError(
            f"{where}: weights changed since backbone {spec.name!r} was saved (sha256 "
            f"{(actual or '?')[:12]} != {spec.weights_sha256[:12]}); use the original file"
        )


def assemble(
    model: nn.Module,
    spec: BackboneSpec,
    data_config: DataConfig | None,
    image_size: int | None,
    *,
    num_features: int | None = None,
) -> Backbone:
    """The Backbone in eval mode; ``data_config`` None reads the network's timm metadata.

    ``num_features``: the features' width when the source knows it (a bundled entry), which
    spares the measuring forward pass (a third of a second on a CPU's first call); None measures.
    """
    config = data_config if data_config is not None else timm_data_config(model)
    try:
        config = config.with_image_size(image_size)
    except ValueError as e:
        raise ConfigError(f"image_size (--image-size): {e}") from e
    groups = layer_groups(model)
    return Backbone(model, spec, config, groups, num_features=num_features).eval()


def timm_data_config(model: nn.Module) -> DataConfig:
    """The preprocessing in a timm-like network's ``pretrained_cfg``."""
    from timm.data import resolve_model_data_config

    cfg = resolve_model_data_config(model)
    return DataConfig(
        input_size=tuple(cfg["input_size"]),
        mean=tuple(float(m) for m in cfg["mean"]),
        std=tuple(float(s) for s in cfg["std"]),
        interpolation=str(cfg.get("interpolation", "bicubic")),
        crop_pct=float(cfg.get("crop_pct", 1.0)),
    )
