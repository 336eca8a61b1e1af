"""Keeping what the backbone knew, inside ``graft.fit``: a regularizer term and a retention report.

``graft.fit(..., regularize="ewc"|"l2sp"|"lwf")`` (CLI ``--regularize``) adds the regularizer to
the loop as a loss term in every stage that runs the backbone; stages on stored features (a
frozen backbone) train the head alone, and the log says so. When the backbone keeps its
original classifier (the bundled ImageNet head, or the head of a saved graft model used as
``--backbone``), a retention report compares the fine-tuned backbone with the original model
on a reference set after training (top-1 agreement and KL of the source predictions), prints it
and stores it in ``model.info["retention"]``, so forgetting is measured, not guessed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graft.errors import ConfigError
from graft.protect.base import REGULARIZERS, Regularizer, create_regularizer
from graft.protect.term import RegularizerTerm, copy_state
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.backbones.base import Backbone
    from graft.data.base import Dataset, Samples
    from graft.model import GraftModel
    from graft.strategies.base import Plan

#: Cap on reference images for the retention report (two forward passes each).
RETENTION_SAMPLES = 512


@dataclass
class ForgettingSession:
    """What ``graft.fit`` needs around training: the regularizer term and the original model."""

    term: RegularizerTerm | None
    original: Backbone | None
    retention_data: str | Path | None
    log: Callable[[str], None]

    def extensions(self) -> list[ExtensionBase]:
        """The loop's extensions: the regularizer term, then the retention report."""
        out: list[ExtensionBase] = [self.term] if self.term is not None else []
        if self.original is not None:
            out.append(RetentionReport(self.original, self.retention_data, self.log))
        return out


class RetentionReport(ExtensionBase):
    """An extension without a loss: after training, agreement with the original model.

    Args:
        original: a frozen copy of the backbone before training, with its source classifier.
        retention_data: reference images (default: the target test, else val split).
        log: where to print the report.
    """

    name = "retention"

    def __init__(
        self, original: Backbone, retention_data: str | Path | None, log: Callable[[str], None]
    ) -> None:
        self.original, self.retention_data, self.log = original, retention_data, log

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """Measure retention; also kept in ``model.info["retention"]``."""
        samples, where = _reference(dataset, self.retention_data)
        param = next(model.parameters(), None)
        if param is not None:  # the original runs where Accelerate put the trained model
            self.original.to(param.device)
        report = measure_retention(self.original, model, samples, batch_size=cfg.batch_size)
        report["reference"] = where
        model.info["retention"] = report
        self.log(
            f"retention (original model vs fine-tuned backbone + original head, {where}): "
            f"top-1 agreement {report['top1_agreement']:.1%}, KL {report['mean_kl']:.4f} nats"
        )
        return report


def start_forgetting(
    model: GraftModel,
    plan: Plan,
    dataset: Dataset,
    *,
    regularize: str | Regularizer | None = None,
    regularize_strength: float | None = None,
    regularize_options: dict[str, Any] | None = None,
    ewc_data: str | Path | None = None,
    retention: bool = True,
    retention_data: str | Path | None = None,
    use_cache: bool = True,
    log: Callable[[str], None] = print,
) -> ForgettingSession:
    """Build the regularizer term and keep a frozen copy of the original model, before training.

    Args:
        model: the model about to be trained, at its pretrained weights.
        plan: the strategy's plan (to tell in which stages the term is active).
        dataset: the target data (EWC's Fisher runs on its training images by default).
        regularize: ``ewc``, ``l2sp``, ``lwf`` (any registered name) or a Regularizer.
        regularize_strength: the method's main strength (EWC/LwF ``lam``, L2-SP ``alpha``).
        regularize_options: other options of the method, e.g. ``{"temperature": 2}``.
        ewc_data: source-like images for EWC's Fisher (default: the target training images).
        retention: measure retention after training when the original head is available.
        retention_data: reference images for retention (default: the test, else val split).
        use_cache: the loop trains frozen-backbone stages on stored features.
        log: where to write messages.
    """
    if ewc_data is not None and not _named(regularize, "ewc"):
        raise ConfigError("--ewc-data is the data for EWC's Fisher; pass it with --regularize ewc")
    term = None
    if regularize is not None:
        reg, name = _regularizer(regularize, regularize_strength, regularize_options)
        reference = _fisher_batches(model, dataset, ewc_data) if name == "ewc" else None
        anchor = copy_state(model.backbone)  # the pretrained weights, before any update
        term = RegularizerTerm(reg, name=name, reference=reference, anchor=anchor, log=log)
        log(_activity(name, plan, use_cache))
    original = None
    # The automatic report runs where it means something; asked for (a regularizer to judge,
    # or reference images named) it runs wherever the original classifier exists.
    asked = regularize is not None or retention_data is not None
    skip = None if asked else retention_skip_reason(model, plan)
    if retention and skip is not None:
        log(f"retention report skipped: {skip}")
    if retention and skip is None and model.backbone.source_head is not None:
        original = copy.deepcopy(model.backbone).cpu().eval().requires_grad_(False)
    elif retention_data is not None:
        raise ConfigError(
            f"--retention-data: backbone {model.backbone.spec.name!r} has no original classifier "
            "to compare with; retention needs the bundled backbone or a saved graft model"
        )
    return ForgettingSession(term, original, retention_data, log)


def retention_skip_reason(model: GraftModel, plan: Plan) -> str | None:
    """Why a retention report would mean nothing for this run (None: it means something).

    Retention compares the original model with the fine-tuned backbone under the original
    head: it needs a pretrained backbone with its original classifier that some stage trains.
    """
    spec = model.backbone.spec
    if not spec.pretrained or spec.source == "random":
        return f"backbone {spec.name!r} is randomly initialised: it has no original task to keep"
    if model.backbone.source_head is None:
        return f"backbone {spec.name!r} has no original classifier to compare with"
    if all(s.backbone_frozen for s in plan.stages if s.kind == "task"):
        return "the backbone is frozen in every stage: it cannot have forgotten anything"
    return None


def _named(regularize: str | Regularizer | None, name: str) -> bool:
    if isinstance(regularize, str):
        return REGULARIZERS.normalize(regularize) == name
    return regularize is not None and _registered_name(regularize) == name


def _registered_name(reg: Regularizer) -> str:
    return next((n for n, cls in REGULARIZERS.items() if cls is type(reg)), type(reg).__name__)


def _regularizer(
    regularize: str | Regularizer, strength: float | None, options: dict[str, Any] | None
) -> tuple[Regularizer, str]:
    if isinstance(regularize, Regularizer):
        if strength is not None or options:
            raise ConfigError(
                "regularize_strength / regularize_options configure a regularizer by name; "
                "set them on the Regularizer object instead"
            )
        return regularize, _registered_name(regularize)
    opts = dict(options or {})
    cls = REGULARIZERS.get(regularize)
    if strength is not None:
        opts[cls.strength] = strength
    return create_regularizer(regularize, **opts), REGULARIZERS.normalize(regularize)


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


def _fisher_batches(
    model: GraftModel, dataset: Dataset, ewc_data: str | Path | None
) -> Callable[[], Iterable[Any]]:
    """Batches for EWC's Fisher: ``ewc_data`` images, or the target training split."""
    if ewc_data is not None and model.backbone.source_head is None:
        raise ConfigError(
            f"--ewc-data {ewc_data}: backbone {model.backbone.spec.name!r} has no source "
            "classifier, so the Fisher cannot be measured on source images without labels; "
            "drop --ewc-data (EWC then uses the target's labels)"
        )

    def build() -> Iterable[Any]:
        samples = _encoded(model, dataset.train) if ewc_data is None else _unlabeled(ewc_data)
        return _loader(model, samples, batch_size=32, shuffle=True)

    return build


def _encoded(model: GraftModel, samples: Samples) -> Samples:
    from graft.data.base import Samples

    return Samples(samples.paths, model.task.encode(samples.targets).numpy())


def _unlabeled(source: str | Path) -> Samples:
    from graft.data.unlabeled import load_unlabeled, unlabeled_samples

    return unlabeled_samples(load_unlabeled(source))


def _loader(model: GraftModel, samples: Samples, *, batch_size: int, shuffle: bool) -> Any:
    import torch

    from graft.data import ImageDataset, build_transform

    dataset = ImageDataset(samples, build_transform(model.data_config, train=False))
    generator = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator
    )


def _reference(dataset: Dataset, given: str | Path | None) -> tuple[Samples, str]:
    if given is not None:
        samples = _unlabeled(given)
        return samples, f"{len(samples)} images of {given}"
    for split in ("test", "val"):
        part = dataset.splits().get(split)
        if part is not None and len(part):
            return part, f"target {split} split, {min(len(part), RETENTION_SAMPLES)} images"
    return dataset.train, f"target train split, {min(len(dataset.train), RETENTION_SAMPLES)} images"


def measure_retention(
    original: Backbone,
    model: GraftModel,
    samples: Samples,
    *,
    batch_size: int = 64,
    max_samples: int = RETENTION_SAMPLES,
) -> dict[str, Any]:
    """:func:`~graft.protect.retention.retention` of ``model``'s backbone on image files.

    Args:
        original: the backbone before training, with its source classifier.
        model: the trained model (its backbone keeps the original classifier, frozen).
        samples: reference images, preprocessed as ``model`` expects.
        batch_size: images per forward pass.
        max_samples: use at most this many images.
    """
    from graft.protect.retention import retention

    loader = _loader(model, samples, batch_size=batch_size, shuffle=False)
    result: dict[str, Any] = retention(original, model.backbone, loader, max_samples=max_samples)
    result["samples"] = int(result["samples"])
    return result
