"""The run record: what a ``graft fit`` run was asked to do and what it found, typed and versioned.

Torch-free. It is saved in the artifact (``config.json``, key ``record``) and read back as
``model.record`` by predict, evaluate, compare and the report. While a run is in progress its
parts are collected in ``model.info`` (a plain dict the workflow and the extensions write);
:meth:`RunRecord.from_info` turns that dict, or one saved by graft 0.1.0 (``"info"``), into a
record.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from graft.errors import ArtifactError

RECORD_VERSION = 2  # 2: backbone_ranking (--backbone auto)
# What each extension recorded, by the key it wrote in ``model.info``.
EXTENSION_KEYS = ("regularize", "retention", "adaptation")


@dataclass(kw_only=True)
class RunRecord:
    """Configuration, plan, advice, backbone ranking, history, metrics, data summary and
    extensions of a run.

    Args:
        config: the whole :class:`~graft.config.FitConfig` as a dict (None: not recorded).
        plan: the strategy's plan (``Plan.to_dict``).
        advice: the advisor's reasoning when the strategy was ``auto``.
        backbone_ranking: how ``--backbone auto`` chose the backbone: the candidates ranked
            (``name`` or ``name@SIZE``) with their scores, best first, the one picked and its
            input size, and the lines logged.
        history: one metrics row per epoch.
        metrics: final metrics per split (``val``, ``test``).
        data: the data summary (source, task, split sizes, classes, skipped files).
        data_options: how the data was read (label/path/target columns, separator).
        split: how the data was split (fractions and seed).
        train_config: the loop's options as trained (checkpoint folder and extension changes in).
        extensions: what each extension recorded, by name (``regularize``, ``retention``,
            ``adaptation``).
        seconds: wall time of the run.
        graft_version: the graft that trained it.
        version: the record's format version.
    """

    config: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    advice: dict[str, Any] | None = None
    backbone_ranking: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] | None = None
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float | None = None
    graft_version: str | None = None
    version: int = RECORD_VERSION

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> RunRecord:
        """A record from the free ``info`` dict (a run in progress, or an artifact of 0.1.0)."""
        info = dict(info)
        extensions = {k: info.pop(k) for k in EXTENSION_KEYS if k in info}
        known = {f.name for f in fields(cls)} - {"extensions", "version"}
        values = {k: info.pop(k) for k in list(info) if k in known and info[k] is not None}
        extensions.update(info.pop("extensions", None) or {})
        extensions.update({k: v for k, v in info.items() if isinstance(v, dict)})
        return cls(**values, extensions=extensions)

    def to_info(self) -> dict[str, Any]:
        """The ``model.info`` dict this record came from (extensions at the top level)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("extensions", "version")}
        out = {k: v for k, v in out.items() if v is not None}
        out.update(self.extensions)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "record") -> RunRecord:
        """The inverse of :meth:`to_dict`; a newer version or an unknown key is an ArtifactError."""
        data = dict(data)
        version = data.get("version", RECORD_VERSION)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise ArtifactError(
                f"{where}: run record version {version} is newer than this graft understands "
                f"({RECORD_VERSION}); upgrade graft-ml"
            )
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=2)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise ArtifactError(f"{where}: unknown run record key {key!r}{hint}")
        return cls(**data)


__all__ = ["EXTENSION_KEYS", "RECORD_VERSION", "RunRecord"]
