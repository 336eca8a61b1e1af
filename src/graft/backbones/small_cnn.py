"""A small CNN for small images, trained from scratch (the ``scratch:`` source, see scratch.py).

It is graft's from-scratch baseline and a source network of its own: train it on one task with
``--backbone small_cnn --no-pretrained``, then pass the saved model as ``--backbone graft:PATH`` to
transfer it to another task. It behaves like a timm model toward :class:`Backbone`
(``forward_features``, ``forward_head``, ``get_classifier``, ``group_matcher``,
``pretrained_cfg``), so every strategy plans over its layer groups (stem, then one group per
stage) and the model artifact rebuilds it from its spec.

Asking for it pretrained is a :class:`~graft.errors.BackboneError` rather than a silent random
initialisation: graft never hands out random weights where trained ones were requested.

Architecture (VGG-style, as in Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015, with BatchNorm from Ioffe & Szegedy, ICML 2015): a
3x3 conv stem, then stages of two 3x3 conv-BN-ReLU layers and a 2x2 max pool, then global
average pooling. At 32x32 input the default has about 0.3 M parameters and 128 features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from graft.errors import BackboneError

#: Names accepted by ``--backbone`` and the architecture arguments each stands for.
SMALL_CNNS: dict[str, dict[str, Any]] = {
    "small_cnn": {"in_chans": 3, "widths": [32, 64, 128]},
    "small_cnn_gray": {"in_chans": 1, "widths": [32, 64, 128]},
}

DEFAULT_IMAGE_SIZE = 32

NO_PRETRAINED = (
    "has no pretrained weights: it is trained from scratch. Pass pretrained=False "
    "(CLI --no-pretrained), weights=PATH (--weights PATH) for weights you trained yourself, or "
    "use a graft model trained with it as the backbone (--backbone graft:path/to/saved/model)"
)


def is_small_cnn(arch: str) -> bool:
    """True for the names (architectures) this module builds."""
    return arch in SMALL_CNNS


def no_pretrained_error(name: str) -> BackboneError:
    """The error for ``--backbone small_cnn`` without ``--no-pretrained``."""
    return BackboneError(f"backbone {name!r} {NO_PRETRAINED}")


def build_small_cnn(arch: str, kwargs: dict[str, Any]) -> SmallCNN:
    """A randomly initialised small CNN (``kwargs`` override the named variant's arguments)."""
    options = {**SMALL_CNNS[arch], **kwargs}
    return SmallCNN(**options)


#: BatchNorm momentum. A from-scratch run on a small dataset takes few steps (10-50), and with
#: PyTorch's 0.1 the running statistics still mostly reflect the initialisation when training
#: ends: on 200 digits 0-4 the trained network scored 23% in eval mode and 97% in train mode.
BN_MOMENTUM = 0.3


def _conv_bn_relu(cin: int, cout: int, momentum: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout, momentum=momentum),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Conv stem, stages of two conv-BN-ReLU layers and a max pool, global average pooling.

    Args:
        in_chans: input channels (1 for greyscale, 3 for RGB).
        widths: output channels of each stage; the stem has ``widths[0]``.
        num_classes: size of an own classifier (0 = none; graft adds its own head).
        image_size: default square input size, recorded in ``pretrained_cfg``.
        bn_momentum: BatchNorm running-statistics momentum (see ``BN_MOMENTUM``).

    Shape:
        - Input: ``(batch, in_chans, height, width)``, any size of at least ``2**len(widths)``.
        - Output of ``forward``: ``(batch, num_classes)``, or ``(batch, widths[-1])`` without one.
    """

    def __init__(
        self,
        *,
        in_chans: int = 3,
        widths: Sequence[int] = (32, 64, 128),
        num_classes: int = 0,
        image_size: int = DEFAULT_IMAGE_SIZE,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        if not widths:
            raise BackboneError("small_cnn needs at least one stage width")
        self.stem = _conv_bn_relu(in_chans, widths[0], bn_momentum)
        stages, cin = [], widths[0]
        for w in widths:
            stages.append(
                nn.Sequential(
                    _conv_bn_relu(cin, w, bn_momentum),
                    _conv_bn_relu(w, w, bn_momentum),
                    nn.MaxPool2d(2),
                )
            )
            cin = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = int(widths[-1])
        self.num_classes = num_classes
        self.classifier: nn.Module = nn.Identity()
        self.reset_classifier(num_classes)
        self.pretrained_cfg: dict[str, Any] = {
            "input_size": (in_chans, image_size, image_size),
            "mean": (0.5,) * in_chans,
            "std": (0.5,) * in_chans,
            "interpolation": "bilinear",
            "crop_pct": 1.0,  # small images: never crop away the object's edges
            "classifier": "classifier",
        }

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps ``(batch, widths[-1], h, w)``."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pooled features (``pre_logits``) or the own classifier's outputs."""
        pooled = self.pool(x).flatten(1)
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the own classifier (0 removes it), as timm models do."""
        self.num_classes = num_classes
        self.classifier = (
            nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        )

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm-style layer groups: the stem, then one group per stage."""
        del coarse
        return {"stem": r"^stem", "blocks": r"^stages\.(\d+)"}
