"""Regularizers that keep what the pretrained backbone knew: EWC, L2-SP, LwF; and retention."""

from graft.regularize import ewc, l2sp, lwf  # noqa: F401  (registers the built-ins)
from graft.regularize.base import REGULARIZERS, Regularizer, create_regularizer
from graft.regularize.ewc import EWC, fisher_diagonal
from graft.regularize.l2sp import L2SP
from graft.regularize.lwf import LwF, distillation_kl
from graft.regularize.retention import retention

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
