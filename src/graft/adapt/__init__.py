"""Domain adaptation with unlabeled target data: DANN, CORAL, MMD, rotation pre-training.

Each method is an extension of the training loop (:mod:`graft.adapt.alignment`,
:mod:`graft.adapt.rotation`), registered in :data:`ADAPTERS` and built by
:func:`create_adapter`.
"""

import inspect
from typing import Any

from graft.adapt.alignment import Alignment, active_stages
from graft.adapt.coral import CORAL, coral_loss
from graft.adapt.dann import DomainAdversarialLoss, DomainDiscriminator
from graft.adapt.grl import GradientReversal, WarmStartGRL, grl_coeff, reverse_gradient
from graft.adapt.mmd import MMD, mmd_loss
from graft.adapt.record import AdaptationRecord, TargetReport
from graft.adapt.registry import ADAPTERS, STAGES
from graft.adapt.rotation import RotationPretext, pretrain_rotation, rotate_batch
from graft.errors import ConfigError


def create_adapter(name: str, feature_dim: int, **options: Any) -> Any:
    """A method by registered name (``dann``, ``coral``, ``mmd``, ``rotation``) with options.

    Options set to None keep their default. An unknown name suggests the close ones; an
    unknown option lists the method's options.
    """
    cls = ADAPTERS.get(name)
    params = inspect.signature(cls.__init__).parameters
    valid = {n for n in params if n not in ("self", "feature_dim")}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(
            f"adapter {ADAPTERS.normalize(name)!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(valid)) or '(none)'}"
        )
    return cls(feature_dim, **{k: v for k, v in options.items() if v is not None})


__all__ = [
    "ADAPTERS",
    "CORAL",
    "MMD",
    "STAGES",
    "AdaptationRecord",
    "Alignment",
    "DomainAdversarialLoss",
    "DomainDiscriminator",
    "GradientReversal",
    "RotationPretext",
    "TargetReport",
    "WarmStartGRL",
    "active_stages",
    "coral_loss",
    "create_adapter",
    "grl_coeff",
    "mmd_loss",
    "pretrain_rotation",
    "reverse_gradient",
    "rotate_batch",
]
