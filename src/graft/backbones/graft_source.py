"""A saved graft model as the backbone of a new fit: custom sources and chained transfer.

``graft.fit(data, backbone="runs/digits")`` (CLI ``--backbone runs/digits``) takes the saved
model's network apart: its backbone (weights, preprocessing, layer groups) becomes the new
backbone, and its head becomes the new backbone's ``source_head``, the "original classifier"
that LEEP, LwF, EWC's sampled Fisher and the retention report use, exactly as ImageNet's
classifier is for a bundled backbone. Intermediate fine-tuning (Phang et al., "Sentence
Encoders on STILTs", 2018; Yosinski et al., "How transferable are features in deep neural
networks?", NeurIPS 2014) is then one command per hop: source -> intermediate -> target.

Chains stay flat: the network is always the *root* architecture (a timm model or a small CNN,
its own classifier removed) plus the latest source head, whatever the chain's length. The
spec records the root spec, the source head's task and preprocessing, so ``graft.load``
rebuilds the architecture without the source folder (the weights come from the new artifact).
Only a classification head is kept as the source classifier (its softmax is what retention
and distillation compare); a regression or multi-label source gives its backbone alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft.backbones.base import Backbone, BackboneSpec, DataConfig, LayerGroup
from graft.errors import BackboneError, ConfigError

SOURCE = "graft"


def is_graft_model(name: str | Path) -> bool:
    """True when ``name`` is a folder meant as a saved graft model (has a config, or is a path)."""
    path = Path(name)
    if not path.is_dir():
        return False
    return (path / "config.json").is_file() or os.sep in str(name) or "/" in str(name)


class SourceNet(nn.Module):
    """A timm-like network: a root body without its classifier, and a source classifier.

    Args:
        body: the root architecture (timm model or small CNN) with its own classifier removed.
        classifier: the saved model's head, or ``nn.Identity()`` when it is not kept.
        pretrained_cfg: preprocessing of the saved model (timm keys), with ``classifier``.

    Shape:
        - Input: ``(batch, channels, height, width)``.
        - Output of ``forward_head(x, pre_logits=True)``: ``(batch, num_features)``.
    """

    def __init__(self, body: nn.Module, classifier: nn.Module, pretrained_cfg: dict[str, Any]):
        super().__init__()
        self.body = body
        self.classifier = classifier
        self.num_features = int(getattr(body, "num_features", 0))
        self.pretrained_cfg = {**pretrained_cfg, "classifier": "classifier"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.forward_features(x)  # type: ignore[operator]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = self.body.forward_head(x, pre_logits=True)  # type: ignore[operator]
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int = 0, *args: Any, **kwargs: Any) -> None:
        """Drop the source classifier (only ``0`` is supported: a chain keeps the latest head)."""
        if num_classes != 0:
            raise BackboneError("a graft source network can only drop its classifier")
        self.classifier = nn.Identity()


def create(
    path: str | Path,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    image_size: int | None = None,
) -> Backbone:
    """The backbone of the saved graft model at ``path``, with its head as ``source_head``.

    Args:
        path: a folder written by ``model.save`` / ``graft fit --out``.
        pretrained: must stay True: the saved weights are the point of a source.
        weights: must be None: the weights are the saved model's.
        image_size: square input size; default the saved model's.
    """
    from graft.backbones.weights import file_sha256
    from graft.model import WEIGHTS_FILE, load

    if weights is not None:
        raise ConfigError(
            f"--weights {weights}: the backbone {path} is a saved graft model and brings its own "
            "weights; drop --weights"
        )
    if not pretrained:
        raise ConfigError(
            f"--no-pretrained with --backbone {path} (a saved graft model): its trained weights "
            "are the point of using it; drop --no-pretrained, or name its architecture "
            "(e.g. --backbone small_cnn --no-pretrained) to start from scratch"
        )
    source = load(path)
    old = source.backbone
    root = dict(old.spec.kwargs["root"]) if old.spec.source == SOURCE else old.spec.to_dict()
    chain = list(old.spec.kwargs.get("chain", [])) if old.spec.source == SOURCE else []
    task = source.task_spec if source.task_spec.kind == "classification" else None
    spec = BackboneSpec(
        name=str(path),
        arch=str(root["arch"]),
        source=SOURCE,
        weights=str(Path(path).resolve()),
        weights_sha256=file_sha256(Path(path) / WEIGHTS_FILE),
        kwargs={
            "root": root,
            "source_task": task.to_dict() if task is not None else None,
            "data_config": source.data_config.to_dict(),
            "chain": [*chain, str(Path(path).resolve())],
        },
    )
    body = _body_of(old.model)
    classifier = _source_classifier(task, body)
    if task is not None:
        classifier.load_state_dict(_plain_head_state(source.head))
    return _assemble(body, classifier, spec, image_size)


def from_spec(spec: BackboneSpec, *, load_weights: bool) -> Backbone:
    """Rebuild a graft-source backbone; with ``load_weights`` from its source folder (checked)."""
    from graft.backbones.factory import from_spec as root_from_spec

    if load_weights:
        rebuilt = create(spec.weights or spec.name)
        if spec.weights_sha256 and rebuilt.spec.weights_sha256 != spec.weights_sha256:
            raise BackboneError(
                f"{spec.weights}: the source model changed since this model was trained from it "
                "(model.safetensors sha256 differs); use the original source folder"
            )
        return rebuilt
    try:
        root = root_from_spec(BackboneSpec.from_dict(spec.kwargs["root"]), load_weights=False)
        task_dict = spec.kwargs.get("source_task")
    except KeyError as e:
        raise BackboneError(f"graft-source backbone spec lacks {e}; save the model again") from e
    body = _body_of(root.model)
    task = _task_spec(task_dict) if task_dict else None
    return _assemble(body, _source_classifier(task, body), spec, None)


def _body_of(model: nn.Module) -> nn.Module:
    """The root network without any classifier (unwraps an earlier source in a chain)."""
    body = model.body if isinstance(model, SourceNet) else model
    reset = getattr(body, "reset_classifier", None)
    if callable(reset):
        reset(0)
    return body


def _task_spec(d: dict[str, Any]) -> Any:
    from graft.tasks.base import TaskSpec

    return TaskSpec.from_dict(d)


def _source_classifier(task: Any, body: nn.Module) -> nn.Module:
    """A classification head of the source task's size, without dropout (frozen, eval only)."""
    if task is None:
        return nn.Identity()
    from graft.tasks.base import Head

    return Head(int(getattr(body, "num_features", 0)), int(task.num_outputs), dropout=0.0)


def _plain_head_state(head: nn.Module) -> dict[str, torch.Tensor]:
    """The saved head's linear weights (its dropout, if any, has no parameters)."""
    return {k: v.detach().clone() for k, v in head.state_dict().items()}


def _assemble(
    body: nn.Module, classifier: nn.Module, spec: BackboneSpec, image_size: int | None
) -> Backbone:
    from graft.backbones.groups import layer_groups

    data_config = DataConfig.from_dict(spec.kwargs["data_config"])
    try:
        data_config = data_config.with_image_size(image_size)
    except ValueError as e:
        raise ConfigError(f"image_size (--image-size): {e}") from e
    net = SourceNet(body, classifier, _timm_cfg(data_config))
    groups = [
        LayerGroup(g.name, tuple(f"body.{n}" for n in g.param_names)) for g in layer_groups(body)
    ]
    return Backbone(net, spec, data_config, groups).eval()


def _timm_cfg(config: DataConfig) -> dict[str, Any]:
    return {
        "input_size": config.input_size,
        "mean": config.mean,
        "std": config.std,
        "interpolation": config.interpolation,
        "crop_pct": config.crop_pct,
    }
