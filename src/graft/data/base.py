"""What every data source produces: samples (paths + targets) in train/val/test splits.

Image folders, CSV/Parquet tables (and, later, text) all load into a :class:`Dataset`; the
training loop, the feature store and evaluation read nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Task = Literal["classification", "regression", "multilabel", "multitask"]


@dataclass
class Samples:
    """One split: file paths and their targets.

    ``targets`` is ``int64`` of shape ``(n,)`` (class indices) for classification,
    ``float32`` of shape ``(n, n_targets)`` for regression (in original units), a 0/1 ``float32``
    matrix ``(n, n_labels)`` for multi-label, and the subtasks' columns side by side for
    multi-task (see ``Dataset.subtasks``).
    """

    paths: list[Path]
    targets: np.ndarray
    #: text datasets: each item's text (``paths`` then name where it came from: a ``.txt`` file
    #: or ``table.csv:row N``); None for images, which are read from ``paths``.
    texts: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.targets):
            raise ValueError(f"{len(self.paths)} paths but {len(self.targets)} targets")
        if self.texts is not None and len(self.texts) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(self.texts)} texts")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: np.ndarray | list[int]) -> Samples:
        idx = np.asarray(index, dtype=np.int64)
        texts = None if self.texts is None else [self.texts[i] for i in idx]
        return Samples([self.paths[i] for i in idx], self.targets[idx], texts)

    def with_targets(self, targets: np.ndarray) -> Samples:
        """The same items with other targets (e.g. encoded for a task)."""
        return Samples(self.paths, targets, self.texts)

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        """Several splits as one (texts kept when every part has them)."""
        texts = None
        if parts and all(p.texts is not None for p in parts):
            texts = [t for p in parts for t in p.texts or []]
        return Samples(
            [x for p in parts for x in p.paths], np.concatenate([p.targets for p in parts]), texts
        )


@dataclass
class Dataset:
    """A loaded dataset: task, splits, names, and what was skipped while loading."""

    task: Task
    train: Samples
    val: Samples
    test: Samples | None
    class_names: list[str] | None = None
    target_names: list[str] | None = None
    source: str = ""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    input_kind: str = "image"  # what its items are; a backbone must take this kind
    #: multitask only: each task's ``name``, ``kind``, ``columns`` (its width in ``targets``)
    #: and ``class_names`` or ``target_names``, in target-column order.
    subtasks: list[dict[str, Any]] | None = None
    #: identical items found while loading (:mod:`graft.data.content`): ``duplicate_rows`` and
    #: ``split_copies`` dropped (or kept with ``keep_duplicates``), ``kept_together``,
    #: ``label_conflicts``; empty when every item is unique.
    duplicates: dict[str, int] = field(default_factory=dict)
    keep_duplicates: bool = False  # val/test copies of earlier files were kept, not dropped
    #: stop at a file that fails to decode where it is read (training, feature extraction),
    #: instead of skipping it and listing it in ``skipped``
    strict: bool = False

    @property
    def num_outputs(self) -> int:
        if self.task in ("classification", "multilabel"):
            assert self.class_names is not None
            return len(self.class_names)
        if self.task == "multitask":
            return sum(len(t.get("class_names") or [t["name"]]) for t in self.subtasks or [])
        assert self.target_names is not None
        return len(self.target_names)

    def class_counts(self) -> list[int] | None:
        """Training samples per class (per label for multi-label); None for other tasks."""
        if self.class_names is None or self.task not in ("classification", "multilabel"):
            return None
        t = np.asarray(self.train.targets)
        if self.task == "multilabel":
            return [int(v) for v in t.reshape(len(t), -1).sum(axis=0)]
        return np.bincount(t.astype(np.int64), minlength=len(self.class_names)).tolist()

    def describe(self) -> str:
        """What the model learns, in words: ``10 classes``, ``targets a, b``, ``tasks a, b``."""
        if self.task == "multitask":
            return "tasks " + ", ".join(f"{t['name']} ({t['kind']})" for t in self.subtasks or [])
        if self.task in ("classification", "multilabel"):
            return f"{len(self.class_names or [])} {'labels' if self.task == 'multilabel' else 'classes'}"
        return f"targets {', '.join(self.target_names or [])}"

    def describe_duplicates(self) -> str:
        """The duplicates found, for the data summary line (empty when none)."""
        words = {
            "duplicate_rows": "duplicate rows dropped",
            "split_copies": "val/test copies of earlier files "
            + ("kept" if self.keep_duplicates else "dropped"),
            "kept_together": "identical files kept in one split",
            "label_conflicts": "identical images under different labels",
        }
        return ", ".join(f"{n} {words[k]}" for k, n in self.duplicates.items() if n and k in words)

    def splits(self) -> dict[str, Samples]:
        out = {"train": self.train, "val": self.val}
        if self.test is not None:
            out["test"] = self.test
        return out
