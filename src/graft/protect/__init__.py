"""Regularizers that keep what the pretrained backbone knew: EWC, L2-SP, LwF; and retention."""

from graft.protect import ewc, l2sp, lwf  # noqa: F401  (registers the built-ins)
from graft.protect.base import REGULARIZERS, Regularizer, create_regularizer
from graft.protect.ewc import EWC, fisher_diagonal
from graft.protect.l2sp import L2SP
from graft.protect.lwf import LwF, distillation_kl
from graft.protect.retention import retention

__all__ = [
    "EWC",
    "L2SP",
    "REGULARIZERS",
    "LwF",
    "Regularizer",
    "create_regularizer",
    "distillation_kl",
    "fisher_diagonal",
    "retention",
]
