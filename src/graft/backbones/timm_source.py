"""The ``timm:`` source: any timm architecture, its pretrained weights from timm's model hub.

Weights never silently fall back to random initialisation: a pretrained backbone whose weights
cannot be had is a :class:`~graft.errors.BackboneError` that says what to do instead.
"""

from __future__ import annotations

import difflib
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from graft.backbones.base import Backbone, BackboneSpec
from graft.backbones.plain import FIXES, assemble, build_plain, rebuild_plain
from graft.backbones.small_cnn import is_small_cnn, no_pretrained_error
from graft.backbones.sources import Source, SourceExample, register_source, unknown_message
from graft.errors import BackboneError


@register_source
class TimmSource(Source):
    """Any timm model: ``timm:resnet50`` (or the bare name); weights from timm's hub."""

    prefix = "timm"
    summary = "any timm model, e.g. timm:resnet50 (or the bare name)"
    usage = (
        "any timm architecture: --backbone timm:<name> (or the bare name), e.g. timm:resnet50;\n"
        "  timm fetches its pretrained weights when a model hub is reachable.\n"
        "local weights for a timm architecture: --backbone timm:<name> --weights PATH\n"
        '  (.safetensors, or a state dict saved with torch.save; "module."/"state_dict" '
        "wrappers are fine).\n"
        "random initialisation: --no-pretrained (pretrained=False)."
    )
    bare_order = 30

    def claims(self, name: str) -> bool:
        import timm

        return bool(name) and bool(timm.is_model(name))

    def suggest(self, name: str) -> str:
        """Close timm model names, for an unknown name."""
        import timm

        close = difflib.get_close_matches(name.lower(), timm.list_models(), n=5, cutoff=0.6)
        return f"Close timm models: {', '.join(close)}." if close else ""

    def example(self, workdir: Path) -> SourceExample:
        del workdir
        return SourceExample("test_efficientnet", {"pretrained": False, "image_size": 32})

    def build(
        self, name: str, *, pretrained: bool, weights: Path | None, image_size: int | None
    ) -> Backbone:
        if not self.claims(name):
            raise BackboneError(unknown_message(name, shown=f"timm:{name}"))
        canonical = f"timm:{name}"
        kwargs = _size_kwargs(name, image_size)
        built = build_plain(canonical, name, kwargs, pretrained=pretrained, weights=weights)
        model, spec = built if built is not None else _from_hub(canonical, name, kwargs)
        return assemble(model, spec, None, image_size)

    def rebuild(self, spec: BackboneSpec, *, load_weights: bool) -> Backbone:
        model = rebuild_plain(spec, load_weights=load_weights)
        if model is None and spec.source == "timm":
            model, _ = _from_hub(spec.name, spec.arch, spec.kwargs)
        if model is None:
            raise BackboneError(f"cannot load weights for backbone source {spec.source!r}")
        return assemble(model, spec, None, None)


def _size_kwargs(arch: str, image_size: int | None) -> dict[str, Any]:
    """``img_size`` for a patch-embedding transformer built at another size (ViT, DeiT, ...).

    Their position embeddings are sized at construction (timm resamples pretrained ones), so
    ``--image-size`` must reach ``timm.create_model``; convolutional networks take any size.
    """
    if image_size is None or is_small_cnn(arch):
        return {}
    import timm

    with torch.device("meta"):
        probe = timm.create_model(arch, pretrained=False)
    return {"img_size": image_size} if hasattr(probe, "patch_embed") else {}


def _from_hub(name: str, arch: str, kwargs: dict[str, Any]) -> tuple[nn.Module, BackboneSpec]:
    import timm
    from timm.models import get_pretrained_cfg

    if is_small_cnn(arch):
        raise no_pretrained_error(name)
    cfg = get_pretrained_cfg(arch)
    where = cfg and (cfg.hf_hub_id or cfg.url or cfg.file)
    if not where:
        # timm would warn and return random weights; graft refuses to do that silently.
        raise BackboneError(f"timm has no pretrained weights for {arch!r}; {FIXES}")
    check_reachable(cfg, arch)
    try:
        model = timm.create_model(arch, pretrained=True, **kwargs)
    except Exception as e:  # hub, HTTP, SSL and file errors differ by timm/huggingface version
        reason = str(e).splitlines()[0][:200] if str(e) else ""
        raise BackboneError(
            f"could not fetch pretrained weights for timm model {arch!r} from {where} "
            f"({type(e).__name__}: {reason}); no network? {FIXES} "
            "(HF_HUB_OFFLINE=1 skips the hub's network retries)"
        ) from e
    return model, BackboneSpec(name, arch, "timm", weights=str(where), kwargs=kwargs)


#: Seconds a quick connect to the model hub may take before graft calls it unreachable.
CONNECT_TIMEOUT = 0.8
_TRUE = {"1", "true", "yes", "on"}


def check_reachable(cfg: Any, arch: str) -> None:
    """Fail at once when weights that are not cached would need an unreachable hub.

    ``HF_HUB_OFFLINE=1``, or no TCP connection to the hub within :data:`CONNECT_TIMEOUT`,
    is an error naming the fixes, instead of the hub client's retries (14 s and more).
    """
    if _cached(cfg):
        return
    host = _host(cfg)
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE and cfg.hf_hub_id:
        raise BackboneError(
            f"could not fetch pretrained weights for timm model {arch!r}: they are not cached "
            f"and HF_HUB_OFFLINE is set, so {host} is not asked; {FIXES}"
        )
    try:
        socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        raise BackboneError(
            f"could not fetch pretrained weights for timm model {arch!r}: no network "
            f"({host}:443 unreachable: {e.__class__.__name__}); {FIXES}"
        ) from None


def _host(cfg: Any) -> str:
    if cfg.hf_hub_id:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        return urlparse(endpoint).hostname or "huggingface.co"
    return urlparse(str(cfg.url)).hostname or "huggingface.co"


def _cached(cfg: Any) -> bool:
    """Whether the weights are already on disk (the hub's cache, torch's cache or a file)."""
    if cfg.file:
        return Path(str(cfg.file)).is_file()
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = str(cfg.hf_hub_id).split("@")[0]
        names = [getattr(cfg, "hf_hub_filename", None), "model.safetensors", "pytorch_model.bin"]
        return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names if name)
    if cfg.url:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        return (hub / os.path.basename(urlparse(str(cfg.url)).path)).is_file()
    return False
