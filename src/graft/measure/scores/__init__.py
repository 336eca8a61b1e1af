"""Transferability scores: how well a backbone's features suit a dataset, before training.

Every score is a pure function on NumPy arrays in its own module, registered in
:data:`SCORES` as a :class:`ScoreSpec`; call any of them uniformly with :func:`score`.
Higher = better transfer. Importing this package registers them all.
"""

from graft.measure.scores.base import SCORES, ScoreSpec, names_for, register_score, score
from graft.measure.scores.hscore import hscore, ledoit_wolf_shrinkage
from graft.measure.scores.leep import leep
from graft.measure.scores.logme import logme
from graft.measure.scores.nce import nce

__all__ = [
    "SCORES",
    "ScoreSpec",
    "hscore",
    "ledoit_wolf_shrinkage",
    "leep",
    "logme",
    "names_for",
    "nce",
    "register_score",
    "score",
]
