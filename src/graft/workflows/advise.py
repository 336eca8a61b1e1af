"""``graft.advise`` and ``graft fit --strategy auto``: measure the data, then decide.

The measuring is :func:`graft.measure.advise.measure_facts`; the decision on its facts is
:func:`graft.strategies.auto.decide`. This workflow loads the data and the backbone, joins the
two, logs the reasoning and hands ``graft.fit`` the chosen strategy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from graft.backbones import DEFAULT_BACKBONE
from graft.backbones.base import Backbone
from graft.config import SPLIT_FRACTION
from graft.data.base import Dataset
from graft.measure.advise import measure_facts, search_size
from graft.measure.source import DEFAULT_SCORE
from graft.measure.stored import store_config
from graft.model import GraftModel
from graft.strategies.auto import Advice, Auto, Facts, as_strategy, decide, size_line
from graft.training.loop import TrainConfig
from graft.workflows import _inputs


def resolve_auto(
    model: GraftModel,
    data: Dataset,
    cfg: TrainConfig,
    *,
    options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    seed: int = 0,
    size_given: bool = False,
) -> Auto:
    """``graft.fit``'s hook for ``strategy="auto"``: measure, log the reasoning, record it.

    The reasoning goes to ``model.info["advice"]`` (saved with the model artifact). When the
    advisor chose an input size (the images are much smaller than the backbone's native size
    and the user gave none), the model is set to train and predict at that size.

    Args:
        model: the model about to be fitted (its backbone is measured).
        data: the fit's dataset.
        cfg: the fit's training options (the feature store reads its own from them).
        options: strategy options the user gave; they override the advisor's.
        log: where the reasoning goes, one line per call.
        seed: subsampling and cross-validation seed.
        size_given: the backbone's input size is the user's (``--image-size``): kept.
    """
    started = time.perf_counter()
    facts = measure_facts(model.backbone, data, cfg, seed=seed, size_given=size_given)
    advice = replace(decide(facts), seconds=round(time.perf_counter() - started, 2))
    for line in advice.lines():
        log(line)
    model.info["advice"] = advice.to_dict()
    _set_size(model, advice.image_size)
    return as_strategy(advice, options, log)


def resolve_size(
    model: GraftModel,
    data: Dataset,
    cfg: TrainConfig,
    *,
    log: Callable[[str], None] = print,
    seed: int = 0,
) -> None:
    """Any strategy other than ``auto`` (which measures it with the rest): the input size for
    images much smaller than a pretrained backbone's native size, measured as the advisor does
    (:func:`graft.measure.advise.search_size`), logged and set on the model. Called only when
    the user gave no ``--image-size``; a randomly initialised backbone keeps its size (a probe
    on random features says nothing about the size to train at).
    """
    if data.input_kind != "image" or not model.backbone.spec.pretrained:
        return
    sized = search_size(model.backbone, data, cfg, seed=seed)
    if not sized.get("size_probes"):
        return
    facts = Facts(task=data.task, n_train=len(data.train), n_outputs=data.num_outputs, **sized)
    log(size_line(facts))
    _set_size(model, facts.image_size)


def _set_size(model: GraftModel, size: int | None) -> None:
    """Train and predict at ``size`` (the backbone's preprocessing and the model's)."""
    if size is not None and size != model.data_config.image_size:
        model.backbone.data_config = model.backbone.data_config.with_image_size(size)
        model.data_config = model.data_config.with_image_size(size)


def advise(
    data: str | Path | Dataset,
    *,
    task: str | None = None,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    pretrained: bool = True,
    image_size: int | None = None,
    max_length: int | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    score: str = DEFAULT_SCORE,
    val_fraction: float = SPLIT_FRACTION,
    test_fraction: float = SPLIT_FRACTION,
    cache_dir: str | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> Advice:
    """What ``graft fit --strategy auto`` would choose for ``data``, without training.

    Args:
        data: an image folder or table, or a loaded Dataset.
        task: ``classification`` or ``regression`` (inferred when None).
        backbone: bundled name, ``timm:<name>``, or a Backbone.
        weights: a local weights file for the backbone.
        pretrained: False measures a randomly initialised backbone.
        image_size: input size override (kept; None: the advisor picks one for images much
            smaller than the backbone's native size).
        max_length: texts: tokens per text (as ``graft fit --max-length``).
        text_column: a table column holding texts (the data are texts).
        label_column: a table column holding class labels.
        score: the transferability score (a registered name).
        val_fraction: validation share when no val split is given (as in fit).
        test_fraction: test share when no test split is given (as in fit).
        cache_dir: feature store folder (the one ``graft fit --cache-dir`` reads).
        batch_size: images per backbone forward.
        seed: data split and random initialisation seed (as in fit).
        progress: progress bars.

    Example:
        >>> print("\\n".join(graft.advise("photos/").lines()))  # doctest: +SKIP
    """
    started = time.perf_counter()
    dataset = _inputs.dataset(
        data, task=task, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
        text_column=text_column, label_column=label_column,
    )  # fmt: skip
    torch.manual_seed(seed)
    bb = _inputs.backbone(
        backbone, weights=weights, pretrained=pretrained, image_size=image_size,
        max_length=max_length,
    )  # fmt: skip
    cfg = store_config(cache_dir, batch_size, 0, progress)
    facts = measure_facts(
        bb, dataset, cfg, score=score, seed=seed, size_given=image_size is not None
    )
    advice = decide(facts)
    return replace(advice, seconds=round(time.perf_counter() - started, 2))
