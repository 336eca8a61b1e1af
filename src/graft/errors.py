"""Errors graft raises for the user's own mistakes. Each message says what, where, and what to do."""

from __future__ import annotations


class GraftError(Exception):
    """Base class: the CLI prints these as one line (no traceback) and exits with status 2."""


class DataError(GraftError, ValueError):
    """Bad input data: a missing or unreadable file, a bad row, an empty class or dataset."""


class BackboneError(GraftError, ValueError):
    """A backbone cannot be built: unknown name, weights that cannot be fetched or do not fit."""


class ArtifactError(GraftError, ValueError):
    """A saved model is missing, damaged or was written by an incompatible graft."""


class TrainingError(GraftError, RuntimeError):
    """Training cannot go on, e.g. the loss became NaN or infinite."""


class ConfigError(GraftError, ValueError):
    """An option or option combination that cannot work (names the option and the fix)."""
