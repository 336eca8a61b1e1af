"""The ``scratch:`` source: networks that exist to be trained from scratch (``small_cnn``,
``small_text``).

``scratch:small_cnn`` and ``scratch:small_cnn_gray`` (or the bare names) build the small CNN of
:mod:`graft.backbones.small_cnn`, ``scratch:small_text`` the small text network of
:mod:`graft.backbones.small_text` (texts), with random weights (``--no-pretrained``) or weights you trained
yourself (``--weights PATH``). Asking for pretrained weights is an error, never a silent
random initialisation.
"""

from __future__ import annotations

from pathlib import Path

from graft.backbones.base import Backbone, BackboneSpec
from graft.backbones.plain import assemble, build_plain, rebuild_plain
from graft.backbones.small_cnn import SMALL_CNNS, is_small_cnn, no_pretrained_error
from graft.backbones.small_text import (
    SMALL_TEXTS,
    build_small_text,
    is_small_text,
    minilm_tokenizer,
)
from graft.backbones.sources import Source, SourceExample, register_source
from graft.errors import BackboneError


@register_source
class ScratchSource(Source):
    """A small network trained from scratch: ``scratch:small_cnn`` (or the bare name)."""

    prefix = "scratch"
    input_kind = "image, text"
    summary = "trained from scratch with --no-pretrained: " + ", ".join([*SMALL_CNNS, *SMALL_TEXTS])
    usage = (
        "a small CNN for small images, trained from scratch: --backbone small_cnn --no-pretrained\n"
        "  (small_cnn_gray for 1-channel images; scratch:small_cnn is the explicit form);\n"
        "  a small text network (embeddings + 1-D convolution): --backbone small_text --no-pretrained."
    )
    bare_order = 20

    def claims(self, name: str) -> bool:
        return is_small_cnn(name) or is_small_text(name)

    def entries(self) -> list[str]:
        return sorted([*SMALL_CNNS, *SMALL_TEXTS])

    def example(self, workdir: Path) -> SourceExample:
        del workdir
        return SourceExample("small_cnn_gray", {"pretrained": False, "image_size": 16})

    def build(
        self, name: str, *, pretrained: bool, weights: Path | None, image_size: int | None
    ) -> Backbone:
        if is_small_text(name):
            if pretrained or weights is not None:
                raise no_pretrained_error(name)
            return build_small_text(name, name, minilm_tokenizer())
        if not is_small_cnn(name):
            known = ", ".join(sorted([*SMALL_CNNS, *SMALL_TEXTS]))
            raise BackboneError(
                f"--backbone scratch:{name}: unknown; the scratch networks: {known}"
            )
        built = build_plain(name, name, {}, pretrained=pretrained, weights=weights)
        if built is None:
            raise no_pretrained_error(name)
        return assemble(*built, None, image_size)

    def rebuild(self, spec: BackboneSpec, *, load_weights: bool) -> Backbone:
        if is_small_text(spec.arch):  # its weights are the artifact's; the tokenizer too
            return build_small_text(spec.arch, spec.name, None, spec.kwargs)
        model = rebuild_plain(spec, load_weights=load_weights)
        if model is None:
            raise no_pretrained_error(spec.name)
        return assemble(model, spec, None, None)
