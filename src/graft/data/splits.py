"""Train/validation/test splits: stratified for classes, reproducible by seed, never crashing.

A stratified split is tried first (:func:`stratified_split`, NumPy only: the same indices as
scikit-learn's ``train_test_split(..., stratify=labels)`` for the same seed, without importing
scikit-learn); when a class is too small to be
stratified (fewer than two images, or fewer test slots than classes) the split falls back to a
per-class allocation that keeps at least one image of every class in training, with one warning.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from graft.data.base import Samples
from graft.errors import ConfigError


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise :class:`ConfigError` unless both shares are in [0, 1) and sum below 1."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 (got {val_fraction} + {test_fraction}); "
            "nothing would be left to train on"
        )


def split_indices(
    n: int,
    labels: np.ndarray | None,
    fraction: float,
    seed: int,
    class_names: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (kept, held_out) with about ``fraction`` held out.

    Args:
        n: number of samples.
        labels: class indices ``(n,)`` to stratify by, or None for a plain shuffle (regression).
        fraction: share to hold out, in [0, 1).
        seed: random seed; the same seed gives the same split.
        class_names: names of the class indices, for the warning about tiny classes.

    Returns:
        Sorted index arrays ``kept`` and ``held_out``.
    """
    idx = np.arange(n)
    n_out = math.floor(n * fraction + 0.5)  # round half up: 22.5 images -> 23
    if n_out == 0 or n < 2:
        return idx, idx[:0]
    n_out = min(n_out, n - 1)
    if labels is None:
        perm = np.random.default_rng(seed).permutation(n)
        return np.sort(perm[n_out:]), np.sort(perm[:n_out])
    counts = np.bincount(labels)
    tiny = [c for c in np.flatnonzero(counts) if counts[c] < 2]
    if tiny:
        named = [str(class_names[c]) if class_names else str(c) for c in tiny]
        warnings.warn(
            f"classes {named} have a single image, too few to stratify the split; it stays in "
            "training and the split is made class by class",
            stacklevel=4,
        )
        kept, out = _per_class_split(labels, fraction, seed)
    else:
        try:
            kept, out = stratified_split(labels, n_out, seed)
        except ValueError:  # fewer held-out slots than classes: allocate class by class
            kept, out = _per_class_split(labels, fraction, seed)
    return np.sort(np.asarray(kept)), np.sort(np.asarray(out))


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per-class draws near the multivariate hypergeometric mode; ties broken by ``rng``.

    The algorithm of scikit-learn's ``utils.extmath._approximate_mode`` (BSD-3), step for step,
    so the random stream and therefore the split are identical.
    """
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need -= add_now
            if need == 0:
                break
    return floored.astype(int)


def stratified_split(labels: np.ndarray, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held_out) indices, stratified by ``labels``, ``n_out`` held out.

    Gives exactly scikit-learn's ``StratifiedShuffleSplit(test_size=n_out, random_state=seed)``
    first split (what ``train_test_split(stratify=...)`` returns), so splits made before graft
    dropped the scikit-learn import are unchanged.

    Raises:
        ValueError: a class has one member, or fewer kept or held-out slots than classes.
    """
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n_train = len(labels) - n_out
    if counts.min() < 2 or n_train < len(counts) or n_out < len(counts):
        raise ValueError("too few samples per class to stratify")
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_out, rng)
    kept: list[int] = []
    out: list[int] = []
    for i, members in enumerate(by_class):
        shuffled = members.take(rng.permutation(counts[i]), mode="clip")
        kept.extend(shuffled[: n_i[i]])
        out.extend(shuffled[n_i[i] : n_i[i] + t_i[i]])
    return np.asarray(kept, dtype=np.int64), np.asarray(out, dtype=np.int64)


def _per_class_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    out: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        # A class's only image must train; small classes give up at most n - 1 images.
        k = min(math.floor(len(members) * fraction + 0.5), len(members) - 1)
        out.append(members[:k])
        kept.append(members[k:])
    return np.concatenate(kept), np.concatenate(out)


def make_splits(
    pool: Samples,
    *,
    stratify: bool,
    val_fraction: float,
    test_fraction: float,
    need_val: bool,
    need_test: bool,
    seed: int,
    class_names: list[str] | None = None,
    groups: np.ndarray | None = None,
) -> tuple[Samples, Samples | None, Samples | None]:
    """Carve the missing validation and test splits out of ``pool``.

    Fractions are shares of the whole pool: test is taken first, then validation from the rest.
    With ``groups`` (one id per item, e.g. :func:`graft.data.content.content_groups`), the
    groups are split instead of the items, each by its first item's label, so the members of a
    group always land in the same split. Without repeated ids the split is the same as without
    ``groups``.

    Returns:
        ``(train, val, test)``; ``val``/``test`` are None where not needed (given elsewhere),
        and empty :class:`Samples` where needed but the fraction is 0.
    """
    labels = pool.targets if stratify else None
    firsts, member_of = np.arange(len(pool)), None
    if groups is not None and len(groups):
        _, firsts, inverse = np.unique(groups, return_index=True, return_inverse=True)
        order = np.argsort(firsts, kind="stable")
        firsts = firsts[order]  # one item per group, in pool order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        member_of = rank[inverse.ravel()]  # each item's position among ``firsts``
    rest, val, test = _positions(
        None if labels is None else labels[firsts],
        len(firsts),
        (val_fraction, test_fraction),
        need_val,
        need_test,
        seed,
        class_names,
    )
    if member_of is not None and len(firsts) < len(pool):  # each group: all its members
        rest = np.flatnonzero(np.isin(member_of, rest))
        val = None if val is None else np.flatnonzero(np.isin(member_of, val))
        test = None if test is None else np.flatnonzero(np.isin(member_of, test))
    return (
        pool.subset(rest),
        None if val is None else pool.subset(val),
        None if test is None else pool.subset(test),
    )


def _positions(
    labels: np.ndarray | None,
    n: int,
    fractions: tuple[float, float],
    need_val: bool,
    need_test: bool,
    seed: int,
    class_names: list[str] | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(train, val, test) positions in ``range(n)``; val/test None where not needed."""
    val_fraction, test_fraction = fractions
    rest, test = np.arange(n), None
    if need_test:
        rest, test = split_indices(n, labels, test_fraction, seed, class_names)
    val = None
    if need_val:
        remaining = 1.0 - (test_fraction if need_test else 0.0)
        sub_labels = None if labels is None else labels[rest]
        share = val_fraction / remaining
        keep, val_idx = split_indices(len(rest), sub_labels, share, seed + 1, class_names)
        val, rest = rest[val_idx], rest[keep]
    return rest, val, test
