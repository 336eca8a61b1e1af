"""graft: transfer learning that measures before it trains.

The front door::

    import graft
    model = graft.fit("photos/", epochs=3)     # data -> trained model
    model.predict(["photos/cat/1.jpg"])
    model.save("my-model"); graft.load("my-model")

Heavy libraries (accelerate, sklearn, matplotlib, transformers) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from graft.backbones import create as backbone
    from graft.evaluate.compare import compare as compare
    from graft.model import GraftModel as GraftModel
    from graft.model import load as load
    from graft.workflows.advise import advise as advise
    from graft.workflows.fit import fit as fit
    from graft.workflows.measure import rank as rank
    from graft.workflows.measure import similarity as similarity

_LAZY = {
    "fit": ("graft.workflows.fit", "fit"),
    "compare": ("graft.evaluate.compare", "compare"),
    "backbone": ("graft.backbones", "create"),
    "load": ("graft.model", "load"),
    "GraftModel": ("graft.model", "GraftModel"),
    "rank": ("graft.workflows.measure", "rank"),
    "similarity": ("graft.workflows.measure", "similarity"),
    "advise": ("graft.workflows.advise", "advise"),
}

__all__ = [
    "GraftModel",
    "__version__",
    "advise",
    "backbone",
    "compare",
    "fit",
    "load",
    "rank",
    "similarity",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'graft' has no attribute {name!r}")
