"""The advisor's measuring: the :class:`~graft.strategies.auto.Facts` behind ``--strategy auto``.

Both inputs of the textbook decision matrix (dataset size x similarity to the source; Yosinski
et al., "How transferable are features in deep neural networks?", NeurIPS 2014) are measured
instead of guessed, on stored features:

* size: training samples per class (classification) or in all (regression);
* gap to the source: :func:`graft.measure.gap.domain_gap` against the reference sample kept with
  each bundled backbone (:func:`graft.measure.source.reference_features`);
* transferability: a registered score (LogME by default) on the features, compared with the
  same score on raw downsampled pixels (both on the same targets, so comparable);
* the negative-transfer guard: a linear probe on the features against the same probe on raw
  pixels (:mod:`graft.measure.probes`).

The decision on these facts is pure and lives with the strategies (:func:`graft.strategies.auto.decide`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from graft.backbones.base import Backbone, measured_width
from graft.backbones.engines import remembered_races
from graft.data.base import Dataset
from graft.data.images import typical_side
from graft.errors import ConfigError, DataError
from graft.measure.probes import (
    PIXEL_SIZE,
    TFIDF_NAME,
    crossed_values,
    pixel_features,
    probe_values,
    standard_error,
    tfidf_values,
)
from graft.measure.scores import SCORES, score
from graft.measure.source import DEFAULT_SCORE, gap_to_source, measure_score
from graft.measure.stored import SplitFeatures, split_features
from graft.strategies.auto import Facts
from graft.strategies.input_size import pick_size, size_candidates
from graft.training.loop import TrainConfig

#: The guard's probes see at most this many training (and half as many validation) samples.
GUARD_MAX = 2000


def measure_facts(
    backbone: Backbone,
    data: Dataset,
    cfg: TrainConfig,
    *,
    score: str = DEFAULT_SCORE,
    seed: int = 0,
    size_given: bool = False,
) -> Facts:
    """Measure size, gap to the source, transferability and the guard on stored features.

    Args:
        backbone: the backbone whose stored features are measured.
        data: the dataset (train and val are measured).
        cfg: the feature store's options (:func:`graft.measure.stored.store_config`).
        score: the transferability score (a registered name).
        seed: subsampling and cross-validation seed.
        size_given: the backbone's input size is the user's (``--image-size``): kept. Else
            the size is searched (:func:`search_size`) when the images are much smaller than
            the backbone's native size. The facts are measured at the size kept or chosen,
            and ``Facts.image_size`` says which.
    """
    base: dict[str, Any] = {"task": data.task, "n_train": len(data.train)}
    base.update(n_outputs=data.num_outputs, source=str(data.source))
    base["pretrained"] = bool(backbone.spec.pretrained)
    if backbone.input_kind == "image" and data.input_kind == "image":
        sizing = search_size(backbone, data, cfg, seed=seed, search=not size_given)
        base.update(sizing, size_given=size_given)
        backbone = at_size(backbone, sizing["image_size"])
    feats = split_features(backbone, data, cfg)
    x_train = feats.features["train"]
    if float(x_train.std(axis=0).max()) <= 1e-6:
        note = f"the features are constant at {backbone.data_config.image_size} px; try a larger --image-size"
        return Facts(**base, gap_note=note, constant_features=True)
    gap, note = gap_to_source(backbone, x_train, seed=seed)
    facts = Facts(
        **base,
        gap=gap.level if gap else None,
        gap_values={"mmd": gap.mmd, "proxy_a_distance": gap.proxy_a_distance, "coral": gap.coral}
        | {"proxy_a_low": gap.proxy_a_low, "proxy_a_high": gap.proxy_a_high}
        if gap
        else None,
        gap_note=note,
    )
    if data.task not in ("classification", "regression") or "val" not in feats.features:
        return facts
    return replace(facts, **score_and_guard(backbone, data, feats, score, seed))


def at_size(backbone: Backbone, size: int) -> Backbone:
    """The backbone with its preprocessing at ``size`` px (a shallow copy: the same weights)."""
    if backbone.data_config.image_size == size:
        return backbone
    sized = copy.copy(backbone)
    sized.data_config = backbone.data_config.with_image_size(size)
    return sized


def search_size(
    backbone: Backbone, data: Dataset, cfg: TrainConfig, *, seed: int = 0, search: bool = True
) -> dict[str, Any]:
    """The input size to train at, as :class:`Facts` fields, measured on stored features.

    When ``search`` is on and the images are much smaller than the backbone's native size
    (:func:`graft.strategies.input_size.size_candidates`), each candidate size costs one frozen pass
    through the feature store (kept there: the fit at the chosen size reuses it) and a linear
    probe on the guard's samples; the smallest size whose probe's validation metric is within
    one standard error of the best is chosen (:func:`graft.strategies.input_size.pick_size`). A size
    the backbone refuses is left out. Otherwise the backbone's size stays (``size_given`` when
    the search is off: the user's ``--image-size``).
    """
    native = backbone.data_config.image_size
    side = typical_side(data.train.paths)
    out: dict[str, Any] = {"image_size": native, "native_size": native, "data_side": side}
    out["size_given"] = not search
    candidates = searched_sizes(data, native, side=side) if search else ()
    if not candidates:
        return out
    with remembered_races():  # one frozen pass per size: the engine race is run once
        probes, noise = _probe_sizes(backbone, data, cfg, candidates, seed)
    if not probes:
        return out
    best = max(probes, key=lambda sp: sp[1])[0]
    chosen = pick_size(probes, noise[best])
    return out | {"image_size": chosen, "size_probes": tuple(probes), "size_noise": noise[best]}


def _probe_sizes(
    backbone: Backbone, data: Dataset, cfg: TrainConfig, candidates: Sequence[int], seed: int
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """Each candidate size's probe (validation metric) and its standard error."""
    probes: list[tuple[int, float]] = []
    noise: dict[int, float] = {}
    for size in candidates:
        try:
            sized = at_size(backbone, size)
            measured_width(backbone.model, sized.data_config.input_size, backbone.spec.name)
            feats = split_features(sized, data, cfg)
            x, y = _samples(feats, seed)
            values = crossed_values(
                probe_values, (x["train"], y["train"]), (x["val"], y["val"]), data.task, seed=seed
            )
        except (ConfigError, ValueError):  # a size the network refuses (ConfigError); one class
            continue
        probes.append((size, round(float(values.mean()), 4)))
        noise[size] = standard_error(values)
    return probes, noise


def searched_sizes(data: Dataset, native: int, *, side: int | None = None) -> tuple[int, ...]:
    """The input sizes :func:`search_size` measures for ``data`` on a backbone of ``native`` px.

    :func:`graft.strategies.input_size.size_candidates` of the images' typical side (``side``
    when already read), for classification or regression with a validation split (the probes
    need both); empty otherwise, and when the images are not much smaller than ``native``.
    ``--backbone auto`` ranks its candidates at these same sizes.
    """
    if data.task not in ("classification", "regression") or not len(data.val):
        return ()
    return size_candidates(side or typical_side(data.train.paths), native)


def _samples(
    feats: SplitFeatures, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The guard's samples: at most ``GUARD_MAX`` training and half as many validation rows."""
    x, y = {}, {}
    for split, idx in _picks(feats, seed).items():
        x[split] = feats.features[split][idx]
        y[split] = np.asarray(feats.targets[split])[idx]
    return x, y


def _picks(feats: SplitFeatures, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    picks = {}
    for split, cap in (("train", GUARD_MAX), ("val", GUARD_MAX // 2)):
        n = len(feats.features[split])
        picks[split] = np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)
    return picks


def score_and_guard(
    backbone: Backbone, data: Dataset, feats: SplitFeatures, score_name: str, seed: int
) -> dict[str, Any]:
    """The score and the probes on features and on pixels, as :class:`Facts` fields.

    The probes are scored per example, so the guard also carries the standard error of their
    paired difference (``probe_noise``): per validation example, or on a small labelled set per
    example of train and validation together by cross-validation
    (:func:`graft.measure.probes.crossed_values`; ``probe_basis`` says which). A probe or a score that cannot be
    computed (one class in the training split, a score that does not apply) is left out, and
    the decision goes on without it.
    """
    picks = _picks(feats, seed)
    x, y = _samples(feats, seed)
    splits = data.splits()
    out: dict[str, Any] = {"probe_metric": "accuracy" if data.task == "classification" else "R²"}
    if data.input_kind == "text":
        return out | _text_guard(data, picks, x, y)
    pix = {s: pixel_features([splits[s].paths[i] for i in idx]) for s, idx in picks.items()}
    try:
        train, val = (x["train"], y["train"]), (x["val"], y["val"])
        ours = crossed_values(probe_values, train, val, data.task, seed=seed)
        pixels = (pix["train"], y["train"]), (pix["val"], y["val"])
        raw = crossed_values(probe_values, *pixels, data.task, seed=seed)
        out.update(_probes(ours, raw, len(val[1])), pixel_size=PIXEL_SIZE)
    except ValueError:  # e.g. a single class in the training split: no probe to fit
        pass
    try:
        fx, fy = feats.joined()
        out.update(
            score_name=score_name, score=measure_score(score_name, backbone, fx, fy, data.task)
        )
        if SCORES.get(score_name).needs == "features" and data.task in (
            "classification",
            "regression",
        ):
            all_pix, all_y = np.concatenate(list(pix.values())), np.concatenate(list(y.values()))
            out["pixel_score"] = score(score_name, targets=all_y, task=data.task, features=all_pix)
    except (ConfigError, DataError):
        pass
    return out


def _probes(ours: np.ndarray, raw: np.ndarray, n_val: int) -> dict[str, Any]:
    """The two probes' metrics, the standard error of their paired difference and its basis."""
    crossed = len(ours) > n_val
    return {
        "probe": float(ours.mean()),
        "pixel_probe": float(raw.mean()),
        "probe_noise": standard_error(ours - raw),
        "probe_basis": f"cross-validated on {len(ours)} labelled examples"
        if crossed
        else f"on {len(ours)} validation examples",
    }


def _text_guard(
    data: Dataset,
    picks: dict[str, np.ndarray],
    x: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Text: the probe on the embeddings against TF-IDF + logistic regression on the texts."""
    splits = data.splits()
    texts = {s: [(splits[s].texts or [])[i] for i in idx] for s, idx in picks.items()}
    try:
        ours = crossed_values(
            probe_values, (x["train"], y["train"]), (x["val"], y["val"]), data.task
        )
        raw = crossed_values(
            tfidf_values, (texts["train"], y["train"]), (texts["val"], y["val"]), data.task
        )
    except ValueError:  # a single class in the training split: no probe to fit
        return {}
    name = TFIDF_NAME if data.task == "classification" else "TF-IDF + ridge"
    return _probes(ours, raw, len(y["val"])) | {"raw_input": name}
