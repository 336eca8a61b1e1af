"""Learning without Forgetting: distil the original model's source predictions into the student.

Li & Hoiem, "Learning without Forgetting", ECCV 2016 / TPAMI 2017; the temperature-scaled
distillation loss is from Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural
Network", 2015.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from graft.backbones.base import Backbone
from graft.errors import ConfigError
from graft.protect.params import backbone_of
from graft.protect.penalty import Penalty
from graft.protect.registry import REGULARIZERS


@REGULARIZERS.register("lwf")
@dataclass(eq=False, kw_only=True)
class LwF(Penalty):
    """``lam * T² * KL(softmax(teacher/T) ‖ softmax(student/T))`` on the source classes.

    The teacher is a frozen copy (eval mode) of the backbone and its source classifier taken at
    :meth:`anchor`. The student's source logits are the fine-tuned backbone's features passed
    through the teacher's (frozen) copy of the source classifier, so only the backbone is
    pulled back. ``T²`` keeps gradient magnitudes independent of the temperature (Hinton et al.).
    The penalty is exactly 0 at the pretrained weights when the student runs in eval mode; in
    train mode, BatchNorm batch statistics and dropout make it small but not 0 from the start.

    Args:
        lam: strength λ (Li & Hoiem: 1).
        temperature: softening temperature T (Li & Hoiem: 2).

    Shape:
        - inputs: ``(batch, channels, height, width)``, the same batch as the task loss.
        - features (optional): ``(batch, num_features)``, the student backbone's output.
    """

    name: ClassVar[str] = "lwf"  # type: ignore[misc]
    needs_inputs: ClassVar[bool] = True

    lam: float = 1.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise ConfigError(f"lwf temperature={self.temperature} must be positive")

    def anchor(
        self,
        model: nn.Module,
        *,
        backbone: Backbone | None = None,
        reference_loader: Iterable[Any] | None = None,
        device: torch.device | str | None = None,
        loss_fn: Any = None,
    ) -> None:
        self._backbone = backbone_of(model, backbone)
        if self._backbone.source_head is None:
            raise ConfigError(
                f"lwf needs the source classifier, which backbone {self._backbone.spec.name!r} "
                "does not keep; use the l2sp or ewc regularizer instead"
            )
        teacher = copy.deepcopy(self._backbone)  # the teacher copy, where the backbone lives
        if device is not None:
            teacher.to(device)
        teacher.eval().requires_grad_(False)
        self.teacher = teacher
        self._ready = True

    def penalty(
        self,
        model: nn.Module,
        inputs: torch.Tensor | None = None,
        outputs: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        self._check_ready()
        if inputs is None:
            raise ConfigError("lwf reads the batch: pass the inputs to penalty(model, inputs)")
        with torch.no_grad():
            teacher_logits = self.teacher.source_logits(inputs)
        if features is None:
            features = self._backbone(inputs)
        head = self.teacher.source_head
        assert head is not None
        student_logits = head(features)
        kl = distillation_kl(student_logits, teacher_logits, self.temperature)
        agree = (student_logits.argmax(-1) == teacher_logits.argmax(-1)).float().mean()
        loss = self.lam * self.temperature**2 * kl
        return loss, {"lwf_kl": float(kl.detach()), "lwf_agreement": float(agree)}


def distillation_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Mean over the batch of ``KL(softmax(teacher/T) ‖ softmax(student/T))``.

    Shape:
        - student_logits, teacher_logits: ``(batch, classes)``.
        - Output: scalar.
    """
    t = temperature
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
