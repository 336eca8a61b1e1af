"""The registry of domain-adaptation methods, and checks their losses share.

Every method registers its class with ``@ADAPTERS.register("name")`` and declares its
``stage``: ``align`` (a loss on source and target features, :mod:`graft.adapt.alignment`) or
``pretrain`` (a pretext stage run before the supervised ones, :mod:`graft.adapt.rotation`).
The registered class is itself the training loop's extension;
:func:`graft.adapt.create_adapter` builds one from keyword options.
"""

from __future__ import annotations

from typing import Any

import torch

from graft._registry import Registry
from graft.errors import ConfigError

STAGES = ("align", "pretrain")

ADAPTERS: Registry[Any] = Registry("adapter")


def check_pair(name: str, source: torch.Tensor, target: torch.Tensor, min_rows: int = 1) -> None:
    """Two 2-D feature batches of the same width with enough rows, or a clear error."""
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(
            f"{name}: need (n, d) source and target features of the same width, "
            f"got {tuple(source.shape)} and {tuple(target.shape)}"
        )
    if len(source) < min_rows or len(target) < min_rows:
        raise ValueError(
            f"{name}: need at least {min_rows} rows per domain, "
            f"got {len(source)} source and {len(target)} target"
        )


def check_non_negative(name: str, **values: float) -> None:
    """A clear error naming the first negative option."""
    for key, value in values.items():
        if value < 0:
            raise ConfigError(f"{name} option {key}={value} must be non-negative")


__all__ = ["ADAPTERS", "STAGES", "check_non_negative", "check_pair"]
