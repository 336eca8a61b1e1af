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

A saved text model used as a source (``graft:``) wraps its encoder and its head in a
:class:`TextSourceNet`: the head becomes the backbone's ``source_head`` (the original
classifier of LEEP, LwF and the retention report); the groups stay the encoder's.

The tokenizer is read back from an artifact as data only: ``tokenizer.json`` (the tokenizers
library's own format: vocabulary, normaliser, pre-tokenizer, post-processor) and the special
tokens of ``tokenizer_config.json``; no tokenizer class named by the file is looked up, no other
file is opened, no code runs (:func:`read_tokenizer`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft.backbones.base import Backbone, BackboneSpec, DataConfig, LayerGroup
from graft.errors import ArtifactError, ConfigError

POOLINGS = ("mean", "cls")
TOKENIZER_DIR = "tokenizer"
#: The files a saved tokenizer is read from (nothing else in its folder is opened).
TOKENIZER_FILE, TOKENIZER_CONFIG = "tokenizer.json", "tokenizer_config.json"
#: Special tokens taken from ``tokenizer_config.json`` (plain strings only).
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                  "mask_token")  # fmt: skip
_SIDES = ("padding_side", "truncation_side")


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
        return self.embed(*self.trim(x))

    @staticmethod
    def trim(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask of a packed batch, cut after its longest text.

        Shape:
            - Input: ``(batch, 2, max_length)``; output: two ``(batch, length)``.
        """
        ids, mask = x[:, 0], x[:, 1]
        length = max(int(mask.sum(dim=1).max()), 1)  # padding past the longest text is waste
        return ids[:, :length], mask[:, :length]

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The pooled (and, per the config, normalised) embedding of token ids and their mask:
        the whole forward after :meth:`trim`, and what the ``onnxruntime`` engine exports (its
        sequence length is a dynamic axis, see :mod:`graft.backbones.engines`).

        Shape:
            - Input: ``ids`` and ``mask`` ``(batch, length)``; output: ``(batch, hidden_size)``.
        """
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        cfg = self.text_config
        if cfg.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1) if cfg.normalize else pooled

    @contextmanager
    def exporting(self) -> Iterator[None]:
        """The encoder's attention as plain matmul and softmax while it is traced to ONNX.

        ONNX Runtime ran that graph about 15% faster than the one PyTorch's fused attention
        (SDPA) exports, with the same outputs (minilm, 32 texts of 256 tokens, 2-core CPU). The
        encoder's own attention is restored afterwards; an encoder that cannot switch (not a
        transformers model, or one that refuses) is traced as it is.
        """
        body = text_body(self.model)
        switch: Any = getattr(body, "set_attn_implementation", None)
        current = getattr(getattr(body, "config", None), "_attn_implementation", None)
        restore = None
        if callable(switch) and current not in (None, "eager"):
            with suppress(Exception):  # an encoder that refuses plain attention: as it is
                switch("eager")
                restore = current
        try:
            yield
        finally:
            if restore is not None:
                switch(restore)

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
        """The weights' hash (see :meth:`Backbone.identity`), the text settings and the tokenizer.

        The tokenizer is part of the key: the same weights read through another vocabulary or
        normaliser (a tokenizer folder edited or swapped) give other features.
        """
        parts = super().identity() + self.text_config.identity + tokenizer_identity(self.tokenizer)
        return hashlib.sha256(parts.encode()).hexdigest()[:16]

    def save_tokenizer(self, folder: Path) -> None:
        """Write the tokenizer's files to ``folder`` (the artifact's ``tokenizer/``)."""
        self.tokenizer.save_pretrained(str(folder))

    def load_tokenizer(self, folder: Path) -> None:
        """Read the tokenizer an artifact saved, as data only (see :func:`read_tokenizer`)."""
        self.tokenizer = read_tokenizer(folder)


class TextSourceNet(nn.Module):
    """A text encoder and a kept source classifier: a saved text model used as a source.

    Called like a transformers encoder (``input_ids``, ``attention_mask`` ->
    ``last_hidden_state``); the classifier is reached through ``get_classifier`` only, so the
    backbone's pooling (and its normalisation) feeds it exactly as it fed the saved model's head.

    Args:
        body: the root encoder (a transformers ``AutoModel`` or the small text network).
        classifier: the saved model's head, or ``nn.Identity()`` when it is not kept.
    """

    def __init__(self, body: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.classifier = classifier
        self.config = body.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Any:
        return self.body(input_ids=input_ids, attention_mask=attention_mask)

    def get_classifier(self) -> nn.Module:
        return self.classifier


def text_body(model: nn.Module) -> nn.Module:
    """The root encoder of a text backbone's network (unwraps an earlier source in a chain)."""
    return model.body if isinstance(model, TextSourceNet) else model


def read_tokenizer(folder: Path) -> Any:
    """A saved tokenizer from ``tokenizer.json`` and ``tokenizer_config.json``, as data only.

    Only those two files are opened; the tokenizer class a config names is not looked up (no
    ``auto_map``, no remote code): the tokenizers library parses ``tokenizer.json`` and the plain
    special tokens and padding sides of the config are applied.

    Raises:
        ArtifactError: a file is missing, unreadable or not what graft writes (named).
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    file, config_file = folder / TOKENIZER_FILE, folder / TOKENIZER_CONFIG
    for path in (file, config_file):
        if not path.is_file():
            raise ArtifactError(
                f"{path}: missing; a text model needs its tokenizer files, save the model again"
            )
    options = _tokenizer_options(config_file)
    try:
        backend = Tokenizer.from_file(str(file))
    except Exception as e:  # the Rust parser raises its own exception type
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ArtifactError(
            f"{file}: not a tokenizer file graft writes ({reason}); save the model again"
        ) from None
    return PreTrainedTokenizerFast(tokenizer_object=backend, **options)


def _tokenizer_options(path: Path) -> dict[str, str]:
    """Special tokens and padding sides from ``tokenizer_config.json`` (plain strings only)."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ArtifactError(f"{path}: not readable JSON ({e}); save the model again") from None
    if not isinstance(config, dict):
        raise ArtifactError(f"{path}: not a tokenizer config (a JSON object); save it again")
    options: dict[str, str] = {}
    for key in (*SPECIAL_TOKENS, *_SIDES):
        value = config.get(key)
        if isinstance(value, dict):  # an AddedToken as older transformers write it
            value = value.get("content")
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 64:
            raise ArtifactError(f"{path}: field {key}: must be a short text; save the model again")
        if key in _SIDES and value not in ("left", "right"):
            raise ArtifactError(f"{path}: field {key}: must be left or right, not {value!r:.20}")
        options[key] = value
    if "pad_token" not in options:
        raise ArtifactError(f"{path}: no pad_token; texts cannot be batched, save the model again")
    return options


def tokenizer_identity(tokenizer: Any) -> str:
    """A short hash of what a tokenizer does (vocabulary, normaliser, special tokens)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return "no-tokenizer" if tokenizer is None else type(tokenizer).__name__
    state = json.loads(backend.to_str())
    # truncation and padding are set per call by the encode arguments, not by the vocabulary
    for key in ("truncation", "padding"):
        state.pop(key, None)
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


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
    """``embeddings``, one group per transformer layer, then anything else (``pooler``).

    Of a :class:`TextSourceNet`, the encoder's groups (named ``body.``...); its source
    classifier is in no group (the target task never trains it).
    """
    if isinstance(model, TextSourceNet):
        return [
            LayerGroup(g.name, tuple(f"body.{n}" for n in g.param_names))
            for g in text_groups(model.body)
        ]
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
