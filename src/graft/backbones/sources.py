"""Backbone sources: where a backbone comes from, named by an explicit prefix.

``--backbone PREFIX:NAME`` picks a registered :class:`Source` (``bundled:``, ``timm:``,
``scratch:``, ``folder:`` (a timm model folder), ``graft:``). A bare name keeps working: a bundled name goes to ``bundled``,
``small_cnn*`` to ``scratch`` and any other name to ``timm``. A saved graft model is found by
its prefix, or when the name is an existing folder that holds a saved model's own files (its
config says so); the shape of the string (a slash) never decides.

Each source builds a backbone from a name and rebuilds one from the :class:`BackboneSpec` a
saved model recorded. A source declares the input kind its backbones take. A source defined
above this layer (the saved-model source needs :mod:`graft.model`) is registered here by its
module's dotted path and imported only when it is first asked for, so this package imports
nothing from the layers above it. Add a source: subclass :class:`Source` in its own file and
decorate it with :func:`register_source`; the contract test then covers it.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from graft._registry import Registry, UnknownNameError
from graft.backbones.base import Backbone, BackboneSpec
from graft.errors import ArtifactError, BackboneError, ConfigError

_PREFIX = re.compile(r"^([A-Za-z][\w-]+):(.*)$", re.DOTALL)  # two letters or more: not C:\


@dataclass(frozen=True)
class SourceExample:
    """A tiny, offline backbone of a source, for the contract test every source passes.

    Args:
        name: the text after the prefix.
        options: keywords for :func:`~graft.backbones.create` (``pretrained``, ``image_size``).
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)


class Source(ABC):
    """One place backbones come from; subclasses register with :func:`register_source`.

    Class attributes:
        prefix: the ``PREFIX:`` that names it (lower snake_case).
        input_kind: the kind of input its backbones take (``image``).
        summary: one line for ``graft models``.
        usage: how to ask for it, for ``graft models`` (may span lines).
        bare_order: bare names are offered to sources in this order (None: prefix only).
    """

    prefix: ClassVar[str]
    input_kind: ClassVar[str] = "image"
    summary: ClassVar[str] = ""
    usage: ClassVar[str] = ""
    bare_order: ClassVar[int | None] = None

    def claims(self, name: str) -> bool:
        """True when a bare ``name`` (no prefix) belongs to this source."""
        del name
        return False

    def holds(self, folder: Path) -> bool:
        """True when an existing ``folder`` holds files this source reads (checked, not guessed)."""
        del folder
        return False

    def entries(self) -> list[str]:
        """Names it offers without a network (listed by ``graft models``); may be empty."""
        return []

    def example(self, workdir: Path) -> SourceExample:
        """A tiny offline backbone of this source (files it needs go under ``workdir``).

        The contract test builds it, saves a model with it and loads that back; a new source
        defines this so that the test covers it without editing a list.
        """
        del workdir
        raise NotImplementedError(f"source {self.prefix!r} defines no example for its tests")

    @abstractmethod
    def build(
        self, name: str, *, pretrained: bool, weights: Path | None, image_size: int | None
    ) -> Backbone:
        """A backbone from ``name`` (the text after the prefix), in eval mode."""

    @abstractmethod
    def rebuild(self, spec: BackboneSpec, *, load_weights: bool) -> Backbone:
        """The backbone a spec describes; without ``load_weights`` the architecture only."""


class SourceRegistry(Registry[Source]):
    """The source registry; also knows sources defined in higher layers by module path."""

    def __init__(self) -> None:
        super().__init__("backbone source")
        self._lazy: dict[str, str] = {}

    def register_lazy(self, prefix: str, module: str) -> None:
        """Register the source ``prefix`` that ``module`` (a dotted path) defines on import."""
        self._lazy[self.normalize(prefix)] = module

    def _load(self, key: str) -> None:
        module = self._lazy.get(key)
        if module is not None and key not in self._entries:
            importlib.import_module(module)
            if key not in self._entries:
                raise BackboneError(f"{module} did not register the backbone source {key!r}")

    def get(self, name: str) -> Source:
        self._load(self.normalize(name))
        return super().get(name)

    def unknown_message(self, name: str) -> str:
        self._entries_all()
        return super().unknown_message(name)

    def _entries_all(self) -> None:
        for key in list(self._lazy):
            self._load(key)

    def names(self, pattern: str = "*") -> list[str]:
        self._entries_all()
        return super().names(pattern)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            self.normalize(name) in self._lazy or super().__contains__(name)
        )

    def __iter__(self) -> Iterator[str]:
        self._entries_all()
        return super().__iter__()

    def __len__(self) -> int:
        return len(set(self._entries) | set(self._lazy))

    def items(self) -> list[tuple[str, Source]]:
        self._entries_all()
        return super().items()

    def loaded(self) -> list[Source]:
        """Sources imported so far; lazy ones take prefixed names and folders only."""
        return [self._entries[k] for k in sorted(self._entries)]


SOURCES = SourceRegistry()
# The saved-model source needs GraftModel (the model layer): found through its module path.
SOURCES.register_lazy("graft", "graft.model_source")

S = TypeVar("S", bound=type[Source])


def register_source(cls: S) -> S:
    """Class decorator: register one instance of a :class:`Source` under its ``prefix``."""
    SOURCES.register(cls.prefix)(cls())
    return cls


def resolve(name: str, *, folders: bool = True) -> tuple[Source, str]:
    """The source a ``--backbone`` value names, and the name to give it.

    Args:
        name: ``PREFIX:NAME``, a bare name, or (with ``folders``) a folder a source holds.
        folders: also look at an existing folder of that name (False: names only, as when
            rebuilding a recorded spec, whose meaning must not depend on the current folder).

    Order: an explicit ``PREFIX:``; else an existing folder that a source holds, or a bare
    name offered to the sources in their ``bare_order`` (both at once is ambiguous).

    Raises:
        BackboneError: unknown prefix or name (the message lists the known ones).
        ConfigError: a folder holding a saved model has the name of a known backbone too.
        ArtifactError: an existing folder no source reads, whose name is no known backbone.
    """
    raw = name.strip()
    match = _PREFIX.match(raw)
    if match:
        prefix, rest = match.group(1), match.group(2).strip()
        try:
            return SOURCES.get(prefix), rest
        except UnknownNameError as e:
            raise BackboneError(f"--backbone {raw!r}: {e} Write PREFIX:NAME.") from None
    folder, bare = (_held_folder(raw) if folders else None), _bare_source(raw)
    if folder is not None and bare is not None:
        raise ConfigError(
            f"--backbone {raw!r}: both a folder with a saved model and the {bare.prefix} "
            f"backbone of that name; write {folder.prefix}:{raw} or {bare.prefix}:{raw}"
        )
    chosen = folder or bare
    if chosen is not None:
        return chosen, raw
    if folders and raw and Path(raw).expanduser().is_dir():
        raise ArtifactError(
            f"{raw}: not a saved graft model (no graft config.json and model.safetensors in "
            "it) and not a backbone name; pass the folder a model was saved to (graft:PATH)"
        )
    raise BackboneError(unknown_message(raw))


def source_for_spec(spec: BackboneSpec) -> Source:
    """The source that rebuilds ``spec``: its ``source`` when that names one, else its name's.

    ``random`` and ``local`` (weights origins that several sources share) resolve by name.
    """
    if spec.source in SOURCES:
        return SOURCES.get(spec.source)
    source, _ = resolve(spec.name, folders=False)
    return source


def unknown_message(name: str, *, shown: str | None = None) -> str:
    """The error text for a name no source claims, with each source's suggestions.

    Args:
        name: the name to find close matches for.
        shown: how the user wrote it (default ``name``).
    """
    hints = [h for _, s in SOURCES.items() if (h := _hint(s, name))]
    lines = "; ".join(f"{s.prefix}: {s.summary}" for _, s in SOURCES.items())
    return (
        f"unknown backbone {shown or name!r}.{''.join(' ' + h for h in hints)} "
        f"Sources (PREFIX:NAME): {lines}. See `graft models`."
    )


def _hint(source: Source, name: str) -> str:
    suggest: Callable[[str], str] | None = getattr(source, "suggest", None)
    return suggest(name) if suggest is not None else ""


def _bare_source(name: str) -> Source | None:
    ordered = sorted(
        (s for s in SOURCES.loaded() if s.bare_order is not None),
        key=lambda s: s.bare_order or 0,
    )
    return next((s for s in ordered if s.claims(name)), None)


def _held_folder(name: str) -> Source | None:
    if not name or not Path(name).expanduser().is_dir():
        return None
    folder = Path(name).expanduser()
    return next((s for _, s in SOURCES.items() if s.holds(folder)), None)


def list_sources() -> list[dict[str, str]]:
    """Every source: prefix, input kind, summary, usage and offline entries (``graft models``)."""
    return [
        {
            "prefix": prefix,
            "input_kind": s.input_kind,
            "summary": s.summary,
            "usage": s.usage,
            "entries": ", ".join(s.entries()),
        }
        for prefix, s in SOURCES.items()
    ]
