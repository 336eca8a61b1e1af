"""A small text network trained from scratch: graft's from-scratch baseline for texts.

The text counterpart of :mod:`graft.backbones.small_cnn`, built by the ``scratch:`` source
(``--backbone small_text --no-pretrained``). It reads the token ids of the bundled ``minilm``
tokenizer (the same ids the transfer arms read, so only the weights differ) and is a
:class:`~graft.backbones.text.TextBackbone`: the feature store, every strategy, the loop and the
artifact (weights, config and tokenizer files) treat it like any text encoder.

Architecture: a word embedding table, then one 1-D convolution over token windows with a ReLU,
then mean pooling over the real tokens, as in Kim, "Convolutional Neural Networks for Sentence
Classification", EMNLP 2014 (one convolution) and Joulin et al., "Bag of Tricks for Efficient
Text Classification" (fastText), EACL 2017 (averaged embeddings, a linear classifier on top).
With the default 64-dimensional embeddings over a 30,522-token vocabulary it has about 2 M
parameters, nearly all in the embedding table. Layer groups: ``embeddings``, then ``layer.0``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from graft.backbones.base import BackboneSpec
from graft.backbones.hf_source import minilm_folder
from graft.backbones.text import TextBackbone, TextConfig

#: Names accepted by ``--backbone`` and their architecture arguments.
SMALL_TEXTS: dict[str, dict[str, Any]] = {"small_text": {"dim": 64, "width": 128, "kernel": 3}}
#: How it reads texts: 128 tokens, mean pooling, no normalisation (its features are learned).
SMALL_TEXT_CONFIG = TextConfig(max_length=128, pooling="mean", lowercase=True, normalize=False)
#: The longest ``--max-length`` it accepts (it has no position embeddings to bound it).
SMALL_TEXT_LIMIT = 4096


def is_small_text(arch: str) -> bool:
    """True for the names (architectures) this module builds."""
    return arch in SMALL_TEXTS


class SmallTextNet(nn.Module):
    """Embeddings, one 1-D convolution + ReLU; called like a transformers encoder.

    Args:
        vocab_size: token ids it reads (its tokenizer's vocabulary).
        dim: embedding size.
        width: convolution channels (the feature width after pooling).
        kernel: convolution window in tokens (odd, so the length is kept).

    Shape:
        - Input: ``input_ids`` ``(batch, length)``; ``attention_mask`` is the pooling's business.
        - Output: ``last_hidden_state`` ``(batch, length, width)``.
    """

    def __init__(self, *, vocab_size: int, dim: int = 64, width: int = 128, kernel: int = 3):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.layer = nn.ModuleList([nn.Conv1d(dim, width, kernel, padding=kernel // 2)])
        self.config = SimpleNamespace(hidden_size=width)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> SimpleNamespace:
        del attention_mask  # the backbone pools over the real tokens
        x = self.embeddings(input_ids).transpose(1, 2)
        hidden = torch.relu(self.layer[0](x)).transpose(1, 2)
        return SimpleNamespace(last_hidden_state=hidden)  # what TextBackbone reads


def build_small_text(
    arch: str, spec_name: str, tokenizer: Any, kwargs: dict[str, Any] | None = None
) -> TextBackbone:
    """A randomly initialised small text network reading ``tokenizer``'s ids (None: set later)."""
    options = {**SMALL_TEXTS[arch], **(kwargs or {})}
    text = options.pop("text", SMALL_TEXT_CONFIG.to_dict())
    vocab = int(options.pop("vocab_size", len(tokenizer) if tokenizer is not None else 0))
    model = SmallTextNet(vocab_size=vocab, **options)
    spec = BackboneSpec(
        spec_name,
        arch,
        "random",
        pretrained=False,
        kwargs={**options, "vocab_size": vocab, "text": text},
    )
    return TextBackbone(model, spec, tokenizer, SMALL_TEXT_LIMIT).eval()


def minilm_tokenizer() -> Any:
    """The bundled ``minilm`` tokenizer (local files only): the small text network's ids."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_folder()), local_files_only=True)
