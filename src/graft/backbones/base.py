"""The Backbone: a pretrained network without its classifier, plus what transfer needs.

A :class:`Backbone` wraps a timm model. Its ``forward`` returns pooled features of shape
``(batch, num_features)``; it keeps the original classifier (``source_head``) for scores that
need the source task (LEEP) and for forgetting measures (LwF, retention), carries the
preprocessing it was trained with (:class:`DataConfig`), and exposes ordered layer groups
from input to output (stem, stages, final layers) for freezing by depth and per-group rates.
It declares the kind of input it takes (``input_kind``: ``"image"`` today); a dataset declares
the kind it yields, and :func:`check_input_kind` refuses a mismatch before any work is done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from graft.errors import ConfigError

#: Input kinds a backbone can take and a dataset can yield.
INPUT_KINDS: tuple[str, ...] = ("image", "text")


@dataclass(frozen=True)
class DataConfig:
    """Preprocessing the weights expect, from timm's ``pretrained_cfg``.

    Args:
        input_size: ``(channels, height, width)``.
        mean: per-channel mean in [0, 1] units.
        std: per-channel standard deviation in [0, 1] units.
        interpolation: resize filter name (``bicubic``, ``bilinear``, ``nearest``).
        crop_pct: center-crop fraction used at evaluation (1.0 = resize only).
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875

    def __post_init__(self) -> None:
        c = self.input_size[0]
        if len(self.mean) != c or len(self.std) != c:
            raise ValueError(f"mean/std need {c} values for input_size {self.input_size}")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")

    @property
    def channels(self) -> int:
        return self.input_size[0]

    @property
    def image_size(self) -> int:
        return self.input_size[-1]

    def with_image_size(self, size: int | None) -> DataConfig:
        """The same config at another square input size (``--image-size``)."""
        if size is None:
            return self
        if size < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {size}")
        return replace(self, input_size=(self.channels, size, size))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataConfig:
        return cls(
            input_size=tuple(d["input_size"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            interpolation=str(d.get("interpolation", "bicubic")),
            crop_pct=float(d.get("crop_pct", 1.0)),
        )

    @property
    def identity(self) -> str:
        """A short stable key for the feature store."""
        return _short_hash(self.to_dict())


@dataclass(frozen=True)
class BackboneSpec:
    """Everything needed to rebuild a backbone's architecture (and, if pretrained, its weights).

    Saved in a model artifact's JSON. ``source`` is one of ``bundled``, ``timm``, ``local``,
    ``graft`` (a saved graft model used as a source), ``random`` (``pretrained=False``).
    """

    name: str
    arch: str
    source: str
    pretrained: bool = True
    weights: str | None = None
    weights_sha256: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackboneSpec:
        return cls(**d)


@dataclass(frozen=True)
class LayerGroup:
    """A named, ordered slice of the backbone (input side first) and its parameter names."""

    name: str
    param_names: tuple[str, ...]


class Backbone(nn.Module):
    """A timm model used as a feature extractor, with its preprocessing and layer groups.

    Args:
        model: a timm model (its classifier is kept, see ``source_head``).
        spec: how to rebuild it.
        data_config: the preprocessing its weights expect.
        groups: ordered layer groups, input side first; parameter names relative to ``model``.
        input_kind: the kind of input it takes (one of ``INPUT_KINDS``).

    Shape:
        - Input: ``(batch, channels, height, width)``, normalised with ``data_config``.
        - Output: ``(batch, num_features)``.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: BackboneSpec,
        data_config: DataConfig,
        groups: list[LayerGroup],
        *,
        input_kind: str = "image",
        num_features: int | None = None,
    ) -> None:
        super().__init__()
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind {input_kind!r} is not one of {', '.join(INPUT_KINDS)}")
        self.input_kind = input_kind
        self.model = model
        self.spec = spec
        self.data_config = data_config
        self.groups = groups
        if num_features is not None:  # the caller knows the width (a non-timm network)
            self.num_features = int(num_features)
        elif input_kind == "image":
            self.num_features = measured_width(model, data_config.input_size, spec.name)
        else:  # other kinds set their width from their own configuration
            self.num_features = int(getattr(model, "num_features", 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(x)  # type: ignore[operator]
        return self.model.forward_head(feats, pre_logits=True)  # type: ignore[operator]

    @property
    def preprocessing(self) -> DataConfig:
        """What an input must go through before ``forward`` (for images: the DataConfig)."""
        return self.data_config

    @property
    def source_head(self) -> nn.Module | None:
        """The original classifier (e.g. ImageNet's 1000 classes), or None if it was dropped."""
        get = getattr(self.model, "get_classifier", None)
        head = get() if callable(get) else None
        if head is None or isinstance(head, nn.Identity):
            return None
        return head

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the original task (for LEEP, LwF and the ImageNet sanity check)."""
        head = self.source_head
        if head is None:
            raise ValueError(f"backbone {self.spec.name!r} has no source classifier")
        return head(self(x))

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def group_parameters(self) -> Iterator[tuple[LayerGroup, list[nn.Parameter]]]:
        """Yield each layer group with its parameters, input side first."""
        params = dict(self.model.named_parameters())
        for g in self.groups:
            yield g, [params[n] for n in g.param_names]

    def group_modules(self) -> Iterator[tuple[LayerGroup, list[nn.Module]]]:
        """Yield each layer group with the leaf-owning modules of its parameters."""
        owners: dict[str, nn.Module] = {}
        for mname, module in self.model.named_modules():
            for pname, _ in module.named_parameters(recurse=False):
                owners[f"{mname}.{pname}" if mname else pname] = module
        for g in self.groups:
            seen: dict[int, nn.Module] = {}
            for n in g.param_names:
                seen.setdefault(id(owners[n]), owners[n])
            yield g, list(seen.values())

    def identity(self) -> str:
        """Key for stored features: the architecture and a hash of the current weights.

        Hashing the state dict (tens of milliseconds for a 5 M parameter network) makes the key
        right by construction: fine-tuned or randomly initialised weights never reuse features
        computed with other weights.
        """
        h = hashlib.sha256(self.spec.arch.encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:16]


def measured_width(model: nn.Module, input_size: tuple[int, ...], name: str = "") -> int:
    """The width of the network's pooled pre-logits features, measured on one dummy input.

    timm's ``num_features`` is the width *before* the head; families with a head convolution
    after pooling (MobileNetV3/V4, GhostNet, LCNet, HGNetV2, EfficientViT) output wider
    features, so the head is sized from what the network really returns.

    Raises:
        ConfigError: the network does not accept ``input_size`` (the message names both).
    """
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    try:
        model.eval()
        with torch.no_grad():
            x = torch.zeros((1, *input_size), device=device, dtype=dtype)
            out = model.forward_head(model.forward_features(x), pre_logits=True)  # type: ignore[operator]
    except (RuntimeError, AssertionError, ValueError) as e:
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ConfigError(
            f"backbone {name or type(model).__name__!r} does not accept input size "
            f"{tuple(input_size)} ({reason}); use its native size (drop --image-size) or a "
            "size it accepts (e.g. a multiple of 32, or its patch/window size for transformers)"
        ) from e
    finally:
        model.train(was_training)
    if out.dim() != 2:
        raise ConfigError(
            f"backbone {name or type(model).__name__!r} returns features of shape "
            f"{tuple(out.shape)} from forward_head(pre_logits=True), not (batch, width)"
        )
    return int(out.shape[1])


def check_input_kind(backbone: Backbone, dataset: Any) -> None:
    """Refuse a dataset whose items are not the kind of input the backbone takes.

    Args:
        backbone: the backbone about to read the data.
        dataset: anything with an ``input_kind`` (a :class:`graft.data.Dataset`); an object
            without one yields images, as every reader did before input kinds existed.

    Raises:
        ConfigError: the kinds differ; the message names both and what to do.
    """
    given = str(getattr(dataset, "input_kind", "image"))
    if given == backbone.input_kind:
        return
    where = getattr(dataset, "source", "") or "the data"
    raise ConfigError(
        f"--backbone {backbone.spec.name!r} takes {backbone.input_kind} inputs, but {where} "
        f"holds {given} items; choose a backbone for {given} inputs (see `graft models`) "
        f"or data with {backbone.input_kind} items"
    )


def _short_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
