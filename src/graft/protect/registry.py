"""The registry of the regularizers that keep what the pretrained backbone knew.

Each regularizer registers its class here with ``@REGULARIZERS.register("name")``;
:func:`graft.protect.create_regularizer` builds one from keyword options. The registered
class is itself the training loop's extension (:mod:`graft.protect.penalty`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graft._registry import Registry

if TYPE_CHECKING:
    from graft.protect.penalty import Penalty

REGULARIZERS: Registry[type[Penalty]] = Registry("regularizer")

__all__ = ["REGULARIZERS"]
