"""The extensions of one ``graft.fit`` run: keeping what the backbone knew, domain adaptation.

:func:`setup_extensions` checks the request (before a dry run returns), logs where each
extension acts and, unless it is a dry run, prepares them (rotation pre-training runs here);
the loop then runs them (:mod:`graft.training.extensions`); :func:`finish_extensions` collects
what each one records after training (regularizer options, retention report, adaptation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graft.data.base import Dataset
    from graft.model import GraftModel
    from graft.strategies.base import Plan
    from graft.training.extensions import Extension
    from graft.training.loop import TrainConfig

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
        plan: the strategy's plan (returned unchanged for now).
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
    from graft.adapt.session import start_adaptation
    from graft.protect.session import start_forgetting

    _check_keys("protect", protect, PROTECT_KEYS)
    _check_keys("adapt", adapt, ADAPT_KEYS)
    options = {k: v for k, v in protect.items() if k != "retention"}
    forgetting = start_forgetting(
        model, plan, dataset, **options, retention=bool(protect.get("retention", True)) and not dry_run,
        use_cache=train_config.use_cache, log=log,
    )  # fmt: skip
    adaptation = start_adaptation(
        model, plan, train_config, unlabeled=adapt.get("unlabeled"), adapt=adapt.get("adapt"),
        adapt_options=adapt.get("adapt_options"), target_eval=adapt.get("target_eval"), log=log,
    )  # fmt: skip
    extensions: list[Extension] = []
    if adaptation is not None:
        if not dry_run:
            adaptation.prepare(model, train_config)
            plan = adaptation.pretext_stages(plan)
        extensions.append(adaptation)
    extensions += forgetting.extensions()
    return plan, extensions


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


def _check_keys(what: str, given: Mapping[str, Any], valid: tuple[str, ...]) -> None:
    from graft.errors import ConfigError

    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ConfigError(
            f"setup_extensions({what}=...) has no key {', '.join(unknown)}; "
            f"its keys: {', '.join(valid)}"
        )


__all__ = ["finish_extensions", "setup_extensions", "train_config_for"]
