"""Errors graft raises for the user's own mistakes. Each message says what, where, and what to do."""

from __future__ import annotations

from collections.abc import Sequence


def listing(lines: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` lines of a message's list, indented, and how many more there are."""
    shown = "".join(f"\n  {line}" for line in lines[:limit])
    return shown + (f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else "")


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
