"""Text backbones: a transformers encoder with its tokenizer, pooling and layer groups.

A :class:`TextBackbone` is a :class:`~graft.backbones.base.Backbone` whose input is a batch of
token ids and attention masks packed into one ``int64`` tensor ``(batch, 2, max_length)``, so
the loaders, the feature store and the one training loop move it like an image batch. Its
preprocessing is a :class:`TextConfig` (maximum length, pooling, lower-casing, normalisation),
recorded in the backbone's spec so that it travels with the weights; the tokenizer's files are
saved in the artifact beside the weights.

Layer groups, input side first: ``embeddings``, ``layer.0`` ... ``layer.N-1`` and, when the
network has one, ``pooler``; every strategy (feature extraction, top/full fine-tuning,
two-stage, progressive unfreezing from the top, layer-wise decay) uses them unchanged.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft.backbones.base import Backbone, BackboneSpec, DataConfig, LayerGroup
from graft.errors import ConfigError

POOLINGS = ("mean", "cls")
TOKENIZER_DIR = "tokenizer"


@dataclass(frozen=True)
class TextConfig:
    """How texts become the encoder's input and its output an embedding.

    Args:
        max_length: tokens per text, special tokens included; longer texts are truncated.
        pooling: ``mean`` (over the real tokens) or ``cls`` (the first token).
        lowercase: lower-case texts before tokenizing (uncased models).
        normalize: L2-normalise the pooled embedding (as sentence-transformers trains).
    """

    max_length: int = 256
    pooling: str = "mean"
    lowercase: bool = False
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ConfigError(f"max_length must be at least 2 tokens, got {self.max_length}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextConfig:
        return cls(
            max_length=int(d["max_length"]),
            pooling=str(d["pooling"]),
            lowercase=bool(d["lowercase"]),
            normalize=bool(d["normalize"]),
        )

    @property
    def identity(self) -> str:
        """A short stable key of the settings (the feature store's preprocessing key)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return "text-" + hashlib.sha256(blob).hexdigest()[:16]


class TextBackbone(Backbone):
    """A transformers encoder (``AutoModel``) as a feature extractor for texts.

    Args:
        model: the encoder; called with ``input_ids`` and ``attention_mask``.
        spec: how to rebuild it (``kwargs["text"]`` holds the :class:`TextConfig`).
        tokenizer: its tokenizer (a fast one counts truncated texts).
        limit: the largest ``max_length`` the position embeddings allow.

    Shape:
        - Input: ``(batch, 2, length)`` int64: token ids, then the attention mask.
        - Output: ``(batch, hidden_size)``.
    """

    def __init__(self, model: nn.Module, spec: BackboneSpec, tokenizer: Any, limit: int) -> None:
        super().__init__(model, spec, DataConfig(), text_groups(model), input_kind="text")
        self.tokenizer = tokenizer
        self.limit = limit
        config: Any = model.config
        self.num_features = int(config.hidden_size)

    @property
    def text_config(self) -> TextConfig:
        return TextConfig.from_dict(self.spec.kwargs["text"])

    @property
    def preprocessing(self) -> TextConfig:  # type: ignore[override]
        return self.text_config

    def with_max_length(self, max_length: int) -> TextBackbone:
        """The same backbone reading ``max_length`` tokens per text (``--max-length``)."""
        if not 2 <= max_length <= self.limit:
            raise ConfigError(
                f"--max-length {max_length}: {self.spec.name} reads 2 to {self.limit} tokens"
            )
        text = replace(self.text_config, max_length=max_length).to_dict()
        self.spec = replace(self.spec, kwargs={**self.spec.kwargs, "text": text})
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = x[:, 0], x[:, 1]
        length = max(int(mask.sum(dim=1).max()), 1)  # padding past the longest text is waste
        ids, mask = ids[:, :length], mask[:, :length]
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        cfg = self.text_config
        if cfg.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1) if cfg.normalize else pooled

    def encode(self, texts: Sequence[str], *, warn: bool = True) -> torch.Tensor:
        """Tokenize ``texts`` into the packed input ``(n, 2, max_length)``.

        Texts longer than ``max_length`` tokens are truncated, with one warning that says how
        many and how to change the limit.
        """
        if self.tokenizer is None:
            raise ConfigError(f"backbone {self.spec.name!r} has no tokenizer; load a saved model")
        cfg = self.text_config
        batch = [t.lower() for t in texts] if cfg.lowercase else list(texts)
        enc = self.tokenizer(
            batch,
            max_length=cfg.max_length,
            truncation=True,
            padding="max_length",
            return_tensors="pt",
            return_overflowing_tokens=False,
        )
        if warn and not getattr(self, "_warned", False):
            self._warned = _warn_truncated(enc, len(batch), cfg.max_length, self.limit)
        return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).long()

    def identity(self) -> str:
        """The weights' hash (see :meth:`Backbone.identity`) and the text settings."""
        return hashlib.sha256(
            (super().identity() + self.text_config.identity).encode()
        ).hexdigest()[:16]

    def save_tokenizer(self, folder: Path) -> None:
        """Write the tokenizer's files to ``folder`` (the artifact's ``tokenizer/``)."""
        self.tokenizer.save_pretrained(str(folder))

    def load_tokenizer(self, folder: Path) -> None:
        """Read the tokenizer an artifact saved (local files only)."""
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _warn_truncated(enc: Any, n: int, max_length: int, limit: int) -> bool:
    """One warning when texts were cut (True: it was given; the backbone says it once)."""
    encodings = getattr(enc, "encodings", None) or []
    cut = sum(1 for e in encodings if getattr(e, "overflowing", None))
    if cut:
        warnings.warn(
            f"{cut} of {n} texts are longer than {max_length} tokens and were truncated; "
            f"pass --max-length N (up to {limit}) to read more of each text",
            stacklevel=3,
        )
    return bool(cut)


def text_groups(model: nn.Module) -> list[LayerGroup]:
    """``embeddings``, one group per transformer layer, then anything else (``pooler``)."""
    names = [n for n, _ in model.named_parameters()]
    layers: dict[str, list[str]] = {}
    embeddings: list[str] = []
    rest: list[str] = []
    for n in names:
        parts = n.split(".")
        if "layer" in parts and parts.index("layer") + 1 < len(parts):
            i = parts.index("layer")
            if parts[i + 1].isdigit():
                layers.setdefault(f"layer.{parts[i + 1]}", []).append(n)
                continue
        (embeddings if parts[0].startswith("embed") else rest).append(n)
    groups = [LayerGroup("embeddings", tuple(embeddings))] if embeddings else []
    groups += [LayerGroup(k, tuple(v)) for k, v in sorted(layers.items(), key=_layer_index)]
    if rest:
        groups.append(LayerGroup("pooler", tuple(rest)))
    return groups


def _layer_index(item: tuple[str, list[str]]) -> int:
    return int(item[0].split(".")[1])


def token_dataset(
    backbone: TextBackbone, texts: Sequence[str], targets: Any
) -> torch.utils.data.TensorDataset:
    """Packed tokens and targets for a DataLoader (tokenized once, up front)."""
    return torch.utils.data.TensorDataset(backbone.encode(texts), torch.as_tensor(targets))
