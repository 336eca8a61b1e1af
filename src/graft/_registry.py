"""One small registry class used by every family (heads, strategies, scores, regularizers, adapters).

A component registers itself with a decorator in the file that defines it::

    SCORES = Registry("score")

    @SCORES.register("logme")
    def logme(features, targets): ...

An unknown name raises a :class:`KeyError` subclass that lists the known names and suggests
close matches, so a typo on the command line gets an answer a person can act on.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A registry lookup failed; the message lists the known names and close matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A name -> component mapping with a registering decorator.

    Names are lower snake_case; lookups also accept kebab-case (``two-stage`` finds
    ``two_stage``) because CLI flags are written that way.
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    @staticmethod
    def normalize(name: str) -> str:
        return name.strip().lower().replace("-", "_")

    def register(self, name: str) -> Callable[[T], T]:
        key = self.normalize(name)

        def decorator(obj: T) -> T:
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.family} {key!r} is already registered")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        key = self.normalize(name)
        try:
            return self._entries[key]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._entries)
        key = self.normalize(name)
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        # Equally close names in alphabetical order (difflib breaks ties in reverse).
        close.sort(key=lambda c: (-difflib.SequenceMatcher(None, key, c).ratio(), c))
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.family} {name!r}.{hint} Known: {', '.join(known) or '(none)'}."

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, self.normalize(pattern)))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.normalize(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())
