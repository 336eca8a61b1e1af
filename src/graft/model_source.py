"""The ``graft:`` backbone source: a saved graft model as the backbone of a new fit.

``graft.fit(data, backbone="graft:runs/digits")`` (CLI ``--backbone graft:runs/digits``, or the
folder itself when it holds a saved model's files) takes the saved model's network apart: its
backbone (weights, preprocessing, layer groups) becomes the new backbone, and its head becomes
the new backbone's ``source_head``, the "original classifier" that LEEP, LwF, EWC's sampled
Fisher and the retention report use, exactly as ImageNet's classifier is for a bundled backbone.
Intermediate fine-tuning (Phang et al., "Sentence Encoders on STILTs", 2018; Yosinski et al.,
"How transferable are features in deep neural networks?", NeurIPS 2014) is then one command per
hop: source -> intermediate -> target.

A saved *text* model works the same way: its encoder (a transformers model or the small text
network), its text settings (maximum length, pooling, lower-casing, normalisation) and its
tokenizer, read from the artifact's ``tokenizer/`` folder as data only (``tokenizer.json`` and
``tokenizer_config.json``; see :func:`graft.backbones.text.read_tokenizer`), become a
:class:`~graft.backbones.text.TextBackbone` with the same layer groups, whose source head is the
saved model's head. Nothing outside the artifact folder is read and no network is reached.

Chains stay flat: the network is always the *root* architecture (a timm model, a small CNN or
a text encoder, its own classifier removed) plus the latest source head, whatever the chain's
length. The spec records the root spec, the source head's task and preprocessing (and, for
text, the text settings), so ``graft.load`` rebuilds the architecture without the source
folder (the weights, and a text model's tokenizer, come from the new artifact).
Only a classification head is kept as the source classifier (its softmax is what retention
and distillation compare); a regression or multi-label source gives its backbone alone.

This module sits in the model layer (it loads a :class:`~graft.model.GraftModel`); the source
registry in :mod:`graft.backbones.sources` finds it by its module path when ``graft:`` is first
asked for, so the backbones package imports nothing from here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from graft.backbones import BackboneSpec, create, from_spec
from graft.backbones.base import Backbone, measured_width
from graft.backbones.source_net import assemble_source_net, body_of
from graft.backbones.sources import Source, SourceExample, register_source
from graft.backbones.text import TextBackbone, TextSourceNet, text_body
from graft.backbones.weights import file_sha256
from graft.errors import BackboneError, ConfigError
from graft.model import CONFIG_FILE, FORMAT, WEIGHTS_FILE, GraftModel, load
from graft.tasks import Classification, Head, TaskSpec

SOURCE = "graft"


def is_saved_model(folder: Path) -> bool:
    """True when ``folder`` holds a saved graft model's files (its config names the format)."""
    config, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not (config.is_file() and weights.is_file()):
        return False
    try:
        data = json.loads(config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


@register_source
class GraftSource(Source):
    """A saved graft model: ``graft:PATH``, or a folder that holds one."""

    prefix = SOURCE
    input_kind = "image, text"
    summary = "a saved graft model, e.g. graft:runs/digits (its backbone and its head)"
    usage = (
        "a saved graft model as the source: --backbone graft:path/to/model (its backbone and "
        "its head;\n  the folder alone works when it holds a saved model)."
    )

    def holds(self, folder: Path) -> bool:
        return is_saved_model(folder)

    def example(self, workdir: Path) -> SourceExample:
        """A small CNN with a two-class head, saved under ``workdir``: the source model."""
        backbone = create("scratch:small_cnn", pretrained=False, image_size=16)
        folder = GraftModel(backbone, Classification.spec_for(["a", "b"])).save(
            workdir / "source-model"
        )
        return SourceExample(str(folder))

    def build(
        self, name: str, *, pretrained: bool, weights: Path | None, image_size: int | None
    ) -> Backbone:
        """The backbone of the saved model in folder ``name``, its head as ``source_head``."""
        _check_options(name, pretrained, weights)
        source = load(name)
        old = source.backbone
        chained = old.spec.source == SOURCE
        root = dict(old.spec.kwargs["root"]) if chained else old.spec.to_dict()
        chain = list(old.spec.kwargs.get("chain", [])) if chained else []
        task = source.task_spec if source.task_spec.kind == "classification" else None
        folder = Path(name).resolve()
        kwargs = {
            "root": root,
            "source_task": task.to_dict() if task is not None else None,
            "data_config": source.data_config.to_dict(),
            "chain": [*chain, str(folder)],
        }
        if isinstance(old, TextBackbone):
            kwargs["text"] = old.text_config.to_dict()
        spec = BackboneSpec(
            name=name,
            arch=str(root["arch"]),
            source=SOURCE,
            weights=str(folder),
            weights_sha256=file_sha256(folder / WEIGHTS_FILE),
            kwargs=kwargs,
        )
        classifier = _source_classifier(task, old.num_features)
        if task is not None:
            classifier.load_state_dict(_plain_head_state(source.head))
        if isinstance(old, TextBackbone):  # image_size means nothing to a text encoder
            net = TextSourceNet(text_body(old.model), classifier)
            return TextBackbone(net, spec, old.tokenizer, old.limit).eval()
        return assemble_source_net(body_of(old.model), classifier, spec, image_size)

    def rebuild(self, spec: BackboneSpec, *, load_weights: bool) -> Backbone:
        """Rebuild; with ``load_weights`` from its source folder (checked against the sha256)."""
        if load_weights:
            rebuilt = self.build(
                spec.weights or spec.name, pretrained=True, weights=None, image_size=None
            )
            if spec.weights_sha256 and rebuilt.spec.weights_sha256 != spec.weights_sha256:
                raise BackboneError(
                    f"{spec.weights}: the source model changed since this model was trained from "
                    "it (model.safetensors sha256 differs); use the original source folder"
                )
            return rebuilt
        try:
            root = from_spec(BackboneSpec.from_dict(spec.kwargs["root"]), load_weights=False)
            task_dict = spec.kwargs.get("source_task")
        except KeyError as e:
            raise BackboneError(
                f"graft-source backbone spec lacks {e}; save the model again"
            ) from e
        task = TaskSpec.from_dict(task_dict) if task_dict else None
        if isinstance(root, TextBackbone):  # its tokenizer comes from the artifact that loads it
            net = TextSourceNet(text_body(root.model), _source_classifier(task, root.num_features))
            return TextBackbone(net, spec, None, root.limit).eval()
        body = body_of(root.model)
        width = measured_width(body, tuple(spec.kwargs["data_config"]["input_size"]), spec.name)
        return assemble_source_net(body, _source_classifier(task, width), spec, None)


def _check_options(name: str, pretrained: bool, weights: Path | None) -> None:
    if weights is not None:
        raise ConfigError(
            f"--weights {weights}: the backbone {name} is a saved graft model and brings its own "
            "weights; drop --weights"
        )
    if not pretrained:
        raise ConfigError(
            f"--no-pretrained with --backbone {name} (a saved graft model): its trained weights "
            "are the point of using it; drop --no-pretrained, or name its architecture "
            "(e.g. --backbone small_cnn --no-pretrained) to start from scratch"
        )


def _source_classifier(task: TaskSpec | None, width: int) -> nn.Module:
    """A classification head of the source task's size, without dropout (frozen, eval only)."""
    if task is None:
        return nn.Identity()
    return Head(width, int(task.num_outputs), dropout=0.0)


def _plain_head_state(head: nn.Module) -> dict[str, torch.Tensor]:
    """The saved head's linear weights (its dropout, if any, has no parameters)."""
    return {k: v.detach().clone() for k, v in head.state_dict().items()}
