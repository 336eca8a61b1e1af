"""Regularizers that keep what the pretrained backbone knew: EWC, L2-SP, LwF; and retention.

Each regularizer is an extension of the training loop (:mod:`graft.protect.penalty`),
registered in :data:`REGULARIZERS` and built by :func:`create_regularizer`.
"""

from dataclasses import fields
from typing import Any

from graft.errors import ConfigError
from graft.protect.ewc import EWC, fisher_diagonal
from graft.protect.l2sp import L2SP
from graft.protect.lwf import LwF, distillation_kl
from graft.protect.penalty import Penalty
from graft.protect.registry import REGULARIZERS
from graft.protect.retention import RetentionReport, measure_retention, retention


def create_regularizer(name: str, **options: Any) -> Penalty:
    """A regularizer by registered name (``ewc``, ``l2sp``, ``lwf``) with its options.

    Options set to None keep their default. An unknown name suggests the close ones; an
    unknown option lists the method's options.
    """
    cls = REGULARIZERS.get(name)
    valid = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(
            f"regularizer {name!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(valid))}"
        )
    return cls(**{k: v for k, v in options.items() if v is not None})


__all__ = [
    "EWC",
    "L2SP",
    "REGULARIZERS",
    "LwF",
    "Penalty",
    "RetentionReport",
    "create_regularizer",
    "distillation_kl",
    "fisher_diagonal",
    "measure_retention",
    "retention",
]
