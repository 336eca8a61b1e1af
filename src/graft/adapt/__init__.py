"""Domain adaptation with unlabeled target data: DANN, CORAL, MMD, rotation pre-training."""

from graft.adapt import coral, dann, mmd, rotation  # noqa: F401  (registers the built-ins)
from graft.adapt.base import ADAPTERS, Adapter, create_adapter
from graft.adapt.coral import CORAL, coral_loss
from graft.adapt.dann import DomainAdversarialLoss, DomainDiscriminator
from graft.adapt.grl import GradientReversal, WarmStartGRL, grl_coeff, reverse_gradient
from graft.adapt.mmd import MMD, mmd_loss
from graft.adapt.rotation import RotationPretext, pretrain_rotation, rotate_batch

__all__ = [
    "ADAPTERS",
    "CORAL",
    "MMD",
    "Adapter",
    "DomainAdversarialLoss",
    "DomainDiscriminator",
    "GradientReversal",
    "RotationPretext",
    "WarmStartGRL",
    "coral_loss",
    "create_adapter",
    "grl_coeff",
    "mmd_loss",
    "pretrain_rotation",
    "reverse_gradient",
    "rotate_batch",
]
