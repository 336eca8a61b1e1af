"""The ``folder:`` source: a timm model folder on disk (offline), with its own preprocessing.

A folder as timm's ``save_for_hf`` and the Hugging Face hub write it: ``config.json`` naming the
``architecture``, its ``model_args`` and its ``pretrained_cfg`` (input size, mean/std,
interpolation), and ``model.safetensors`` (or a tensors-only ``pytorch_model.bin``). The folder
alone works as ``--backbone``: its files, not its name, say what it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graft.backbones.base import Backbone, BackboneSpec
from graft.backbones.plain import assemble, build_arch, check_sha, load_local
from graft.backbones.sources import Source, SourceExample, register_source
from graft.backbones.weights import file_sha256, read_state_dict
from graft.errors import BackboneError, ConfigError

SOURCE = "folder"
#: The keys of a folder's ``pretrained_cfg`` graft keeps (preprocessing and head layout); never
#: where weights come from (``file``, ``url``, ``hf_hub_id``): graft loads those itself.
PREPROCESSING_KEYS = frozenset(
    {"tag", "custom_load", "input_size", "fixed_input_size", "interpolation", "crop_pct",
     "crop_mode", "mean", "std", "num_classes", "pool_size", "first_conv", "classifier",
     "license", "test_input_size", "test_crop_pct", "min_input_size", "architecture"}
)  # fmt: skip
CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@register_source
class FolderSource(Source):
    """A timm model folder: ``folder:PATH`` (config.json with an architecture, and weights)."""

    prefix = SOURCE
    summary = "a timm model folder (config.json + model.safetensors), e.g. folder:models/resnet"
    usage = (
        "a timm model folder (as timm.models.save_for_hf or a hub download writes it): "
        "--backbone folder:PATH\n  (or the folder alone)."
    )

    def holds(self, folder: Path) -> bool:
        config = _read_config(folder, strict=False)
        return config is not None and _weights_file(folder) is not None

    def example(self, workdir: Path) -> SourceExample:
        import timm
        from timm.models import save_for_hf

        folder = workdir / "timm-folder"
        model = timm.create_model("test_efficientnet", pretrained=False, num_classes=4)
        save_for_hf(model, str(folder), safe_serialization=True)
        return SourceExample(str(folder), {"image_size": 32})

    def build(
        self, name: str, *, pretrained: bool, weights: Path | None, image_size: int | None
    ) -> Backbone:
        if weights is not None or not pretrained:
            raise ConfigError(
                f"--backbone folder:{name} brings its own weights; drop --weights and "
                "--no-pretrained (or name its architecture as timm:<name> for those)"
            )
        folder = Path(name).expanduser().resolve()
        config = _read_config(folder, strict=True)
        assert config is not None
        path = _weights_file(folder)
        if path is None:
            raise BackboneError(f"{folder}: no {' or '.join(WEIGHTS)}; the folder is incomplete")
        arch, kwargs = _arch_and_kwargs(folder, config)
        model = build_arch(arch, kwargs)
        load_local(model, read_state_dict(path), path)
        spec = BackboneSpec(
            f"{SOURCE}:{folder}",
            arch,
            SOURCE,
            weights=str(path),
            weights_sha256=file_sha256(path),
            kwargs=kwargs,
        )
        return assemble(model, spec, None, image_size)

    def rebuild(self, spec: BackboneSpec, *, load_weights: bool) -> Backbone:
        model = build_arch(spec.arch, spec.kwargs)
        if load_weights:
            if not spec.weights or not Path(spec.weights).is_file():
                raise BackboneError(f"{spec.weights}: the folder's weights are gone")
            check_sha(spec, file_sha256(spec.weights), spec.weights)
            load_local(model, read_state_dict(spec.weights), Path(spec.weights))
        return assemble(model, spec, None, None)


def _read_config(folder: Path, *, strict: bool) -> dict[str, Any] | None:
    """The folder's timm config, or None (``strict``: a BackboneError that says why)."""
    path = folder / CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        if strict:
            raise BackboneError(f"{path}: cannot read a timm model config ({e})") from e
        return None
    if isinstance(config, dict) and isinstance(config.get("architecture"), str):
        return config
    if strict:
        raise BackboneError(f"{path}: not a timm model config (no 'architecture')")
    return None


def _weights_file(folder: Path) -> Path | None:
    return next((folder / w for w in WEIGHTS if (folder / w).is_file()), None)


def _arch_and_kwargs(folder: Path, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    import timm

    arch = str(config["architecture"])
    if not timm.is_model(arch):
        raise BackboneError(
            f"{folder / CONFIG}: architecture {arch!r} is not known to this timm "
            f"({timm.__version__}); upgrade timm"
        )
    kwargs = dict(config.get("model_args") or {})
    if "num_classes" in config:
        kwargs.setdefault("num_classes", int(config["num_classes"]))
    if isinstance(config.get("pretrained_cfg"), dict):
        cfg = config["pretrained_cfg"]  # its preprocessing
        kwargs["pretrained_cfg_overlay"] = {k: v for k, v in cfg.items() if k in PREPROCESSING_KEYS}
    return arch, kwargs
