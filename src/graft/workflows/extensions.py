"""The extensions of one ``graft.fit`` run: keeping what the backbone knew, domain adaptation.

:func:`setup_extensions` checks the request (before a dry run returns), logs where each
extension acts and, unless it is a dry run, prepends the pretext stage (rotation) to the plan;
:func:`protect_extensions` and :func:`adapt_extensions` build each family's from its options.
The loop then runs them (:mod:`graft.training.extensions`); :func:`finish_extensions` collects
what each one records after training (regularizer options, retention report, adaptation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graft.adapt import (
    ADAPTERS,
    AdaptationRecord,
    RotationPretext,
    TargetReport,
    active_stages,
    create_adapter,
)
from graft.errors import ConfigError
from graft.protect import REGULARIZERS, Penalty, RetentionReport, create_regularizer
from graft.protect.images import fisher_batches
from graft.protect.params import copy_state

if TYPE_CHECKING:
    from graft.data.base import Dataset
    from graft.model import GraftModel
    from graft.strategies.base import Plan
    from graft.training.extensions import Extension
    from graft.training.loop import TrainConfig

DEFAULT_METHOD = "dann"

PROTECT_KEYS = (
    "regularize",
    "regularize_strength",
    "regularize_options",
    "ewc_data",
    "retention",
    "retention_data",
)
ADAPT_KEYS = ("unlabeled", "adapt", "adapt_options", "target_eval")


def setup_extensions(
    model: GraftModel,
    plan: Plan,
    dataset: Dataset,
    train_config: TrainConfig,
    *,
    protect: Mapping[str, Any],
    adapt: Mapping[str, Any],
    dry_run: bool,
    log: Callable[[str], None],
) -> tuple[Plan, list[Extension]]:
    """Build the loop's extensions from ``graft.fit``'s keywords.

    Args:
        model: the model about to be trained, at its pretrained weights.
        plan: the strategy's plan (rotation prepends its pretext stage to it).
        dataset: the target data (EWC's Fisher, the retention reference).
        train_config: the loop's options (batch size, seed, augmentation, ``use_cache``).
        protect: ``regularize``, ``regularize_strength``, ``regularize_options``, ``ewc_data``,
            ``retention`` (default True), ``retention_data``; as in :func:`graft.fit`.
        adapt: ``unlabeled``, ``adapt``, ``adapt_options``, ``target_eval``.
        dry_run: only check and log; nothing runs (no rotation pre-training, no retention).
        log: where to write messages.

    Returns:
        The plan to train and the extensions, in the order the loop calls them.

    Raises:
        ConfigError: an unknown key, method or option, or a request that cannot act.
    """
    _check_keys("protect", protect, PROTECT_KEYS)
    _check_keys("adapt", adapt, ADAPT_KEYS)
    protecting = protect_extensions(
        model, plan, dataset, protect, use_cache=train_config.use_cache, dry_run=dry_run, log=log
    )
    adapting = adapt_extensions(model, plan, train_config, adapt, log=log)
    if adapting is None:
        return plan, protecting
    if not dry_run and isinstance(adapting, RotationPretext):
        plan = adapting.pretext_stage(plan)
    return plan, [adapting, *protecting]


def protect_extensions(
    model: GraftModel,
    plan: Plan,
    dataset: Dataset,
    options: Mapping[str, Any],
    *,
    use_cache: bool = True,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
) -> list[Extension]:
    """The regularizer (anchored at the current, pretrained weights) and the retention report.

    Args:
        model: the model about to be trained, at its pretrained weights.
        plan: the strategy's plan (to tell in which stages the regularizer is active).
        dataset: the target data (EWC's Fisher runs on its training images by default).
        options: ``regularize`` (a registered name or a built regularizer),
            ``regularize_strength`` (the method's main strength: EWC/LwF ``lam``, L2-SP
            ``alpha``), ``regularize_options``, ``ewc_data`` (source-like images for EWC's
            Fisher), ``retention`` (default True), ``retention_data``.
        use_cache: the loop trains frozen-backbone stages on stored features.
        dry_run: no retention report (nothing is trained).
        log: where to write messages.
    """
    regularize = options.get("regularize")
    ewc_data = options.get("ewc_data")
    if ewc_data is not None and not _named(regularize, "ewc"):
        raise ConfigError("--ewc-data is the data for EWC's Fisher; pass it with --regularize ewc")
    out: list[Extension] = []
    if regularize is not None:
        reg = _regularizer(
            regularize, options.get("regularize_strength"), options.get("regularize_options")
        )
        reference = fisher_batches(model, dataset, ewc_data) if reg.name == "ewc" else None
        out.append(reg.attach(pretrained=copy_state(model.backbone), reference=reference, log=log))
        log(_activity(reg.name, plan, use_cache))
    retention_data = options.get("retention_data")
    # The automatic report runs where it means something; asked for (a regularizer to judge,
    # or reference images named) it runs wherever the original classifier exists.
    asked = regularize is not None or retention_data is not None
    skip = None if asked else RetentionReport.skip_reason(model, plan)
    if options.get("retention", True) and skip is not None and not dry_run:
        log(f"retention report skipped: {skip}")
    elif options.get("retention", True) and not dry_run:
        report = RetentionReport.for_model(model, retention_data, log)
        out += [report] if report is not None else []
    elif retention_data is not None:
        RetentionReport.for_model(model, retention_data, log)  # the same check in a dry run
    return out


def adapt_extensions(
    model: GraftModel,
    plan: Plan,
    train_config: TrainConfig,
    options: Mapping[str, Any],
    *,
    log: Callable[[str], None] = print,
) -> Extension | None:
    """The adaptation method (or a target report alone) as one extension named ``adapt``.

    Args:
        model: the model about to be trained.
        plan: the strategy's plan (alignment needs a stage that tunes the backbone).
        train_config: batch size, seed, augmentation and workers for the target batches.
        options: ``unlabeled``, ``adapt`` (default ``dann``), ``adapt_options``,
            ``target_eval``; None when nothing is asked.

    Raises:
        ConfigError: no target images, an unknown method or option, or a plan in which an
            alignment method would never run (every stage keeps the backbone frozen).
    """
    from graft.data.unlabeled import load_unlabeled

    unlabeled, method = options.get("unlabeled"), options.get("adapt")
    target_eval = options.get("target_eval")
    report = None if target_eval is None else model.samples_for(target_eval)
    if unlabeled is None and method is None:
        if report is None:
            return None
        log(f"target report: {len(report)} labeled target images, used only to report")
        return TargetReport(AdaptationRecord(None, {}, "", 0, [], report, log, model))
    if unlabeled is None:
        raise ConfigError(
            f"adapt={method!r} needs unlabeled target images: pass unlabeled=FOLDER_OR_TABLE "
            "(--unlabeled, or `graft adapt SOURCE TARGET`)"
        )
    name = ADAPTERS.normalize(method or DEFAULT_METHOD)
    given = dict(options.get("adapt_options") or {})
    ext = create_adapter(name, model.backbone.num_features, **given)
    pretext = isinstance(ext, RotationPretext)
    active = (
        ["rotation pre-training (before every stage)"] if pretext else active_stages(plan, name)
    )
    paths = load_unlabeled(unlabeled)
    log(
        f"adaptation: {name} with {len(paths)} unlabeled target images from {unlabeled}; "
        f"active in: {', '.join(active)}"
        + (f"; {len(report)} labeled target images only to report" if report is not None else "")
    )
    record = AdaptationRecord(
        name, ext.options() | given, str(unlabeled), len(paths), active, report, log, model
    )
    cfg = train_config
    if pretext:
        return ext.attach(
            paths, batch_size=cfg.batch_size, augment=cfg.augment,
            num_workers=cfg.num_workers, record=record,
        )  # fmt: skip
    return ext.attach(
        paths, batch_size=cfg.batch_size, seed=cfg.seed, augment=cfg.augment,
        num_workers=cfg.num_workers, record=record,
    )  # fmt: skip


def train_config_for(
    train_config: TrainConfig, extensions: list[Extension], *, weight_decay_given: bool,
    log: Callable[[str], None],
) -> TrainConfig:  # fmt: skip
    """L2-SP decays the new head itself: the optimizer's own decay is off unless asked for."""
    if weight_decay_given or not any(e.name == "l2sp" for e in extensions):
        return train_config
    log("  l2sp: optimizer weight decay set to 0 (L2-SP's beta decays the head)")
    return replace(train_config, weight_decay=0.0)


def finish_extensions(
    extensions: list[Extension], model: GraftModel, dataset: Dataset, train_config: TrainConfig
) -> dict[str, dict[str, Any]]:
    """Each extension's record after training, by its name (``adapt``, ``ewc``, ``retention``).

    The records also stay where ``model.info`` kept them (``adaptation``, ``regularize``,
    ``retention``).
    """
    return {e.name: e.finish(model, dataset, train_config) for e in extensions}


def _named(regularize: str | Penalty | None, name: str) -> bool:
    if isinstance(regularize, str):
        return REGULARIZERS.normalize(regularize) == name
    return regularize is not None and regularize.name == name


def _regularizer(
    regularize: str | Penalty, strength: float | None, options: dict[str, Any] | None
) -> Penalty:
    if isinstance(regularize, Penalty):
        if strength is not None or options:
            raise ConfigError(
                "regularize_strength / regularize_options configure a regularizer by name; "
                "set them on the Regularizer object instead"
            )
        return regularize
    opts = dict(options or {})
    if strength is not None:
        opts[REGULARIZERS.get(regularize).strength] = strength
    return create_regularizer(regularize, **opts)


def _activity(name: str, plan: Plan, use_cache: bool) -> str:
    idle = [s.name for s in plan.stages if s.epochs and use_cache and s.backbone_frozen]
    busy = [s.name for s in plan.stages if s.epochs and s.name not in idle]
    if not busy:
        return (
            f"regularize {name}: inactive, the backbone is frozen in every stage (the head trains "
            "on stored features, so nothing can be forgotten); use a strategy that fine-tunes "
            "the backbone (two_stage, fine_tune_top, full, progressive) for it to act"
        )
    quiet = f"; inactive in {', '.join(idle)} (backbone frozen)" if idle else ""
    return f"regularize {name}: active in stage(s) {', '.join(busy)}{quiet}"


def _check_keys(what: str, given: Mapping[str, Any], valid: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ConfigError(
            f"setup_extensions({what}=...) has no key {', '.join(unknown)}; "
            f"its keys: {', '.join(valid)}"
        )


__all__ = [
    "adapt_extensions",
    "finish_extensions",
    "protect_extensions",
    "setup_extensions",
    "train_config_for",
]
