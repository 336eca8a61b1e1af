"""How much of the source task a fine-tuned backbone still solves (for the model artifact).

When the backbone keeps its original classifier (the bundled ImageNet head, or the head of a
saved graft model used as ``--backbone``), :class:`RetentionReport`, an extension of the loop
without a loss, compares the fine-tuned backbone with the original model on a reference set
after training (top-1 agreement and KL of the source predictions), prints it and stores it in
``model.info["retention"]``, so forgetting is measured, not guessed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graft.backbones.base import Backbone
from graft.errors import ConfigError
from graft.progress import beating
from graft.protect.images import RETENTION_SAMPLES, image_loader, reference_samples
from graft.protect.lwf import distillation_kl
from graft.protect.params import device_of, first_item
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    from graft.data.base import Dataset, Samples
    from graft.model import GraftModel
    from graft.strategies.base import Plan


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

    @staticmethod
    def skip_reason(model: GraftModel, plan: Plan) -> str | None:
        """Why a retention report would mean nothing for this run (None: it means something).

        Retention compares the original model with the fine-tuned backbone under the original
        head: it needs a pretrained backbone with its original classifier that some stage trains.
        """
        spec = model.backbone.spec
        if not spec.pretrained or spec.source == "random":
            return (
                f"backbone {spec.name!r} is randomly initialised: it has no original task to keep"
            )
        if model.backbone.source_head is None:
            return f"backbone {spec.name!r} has no original classifier to compare with"
        if all(s.backbone_frozen for s in plan.stages if s.kind == "task"):
            return "the backbone is frozen in every stage: it cannot have forgotten anything"
        return None

    @classmethod
    def for_model(
        cls, model: GraftModel, retention_data: str | Path | None, log: Callable[[str], None]
    ) -> RetentionReport | None:
        """A report on a frozen copy of ``model``'s backbone; None without a source classifier.

        Raises:
            ConfigError: ``retention_data`` given for a backbone without its classifier.
        """
        if model.backbone.source_head is not None:
            original = copy.deepcopy(model.backbone).eval().requires_grad_(False)
            return cls(original, retention_data, log)
        if retention_data is not None:
            raise ConfigError(
                f"--retention-data: backbone {model.backbone.spec.name!r} has no original "
                "classifier to compare with; retention needs the bundled backbone or a saved "
                "graft model"
            )
        return None

    def finish(self, model: GraftModel, dataset: Dataset, cfg: Any) -> dict[str, Any]:
        """Measure retention where the trained model is; also kept in ``model.info["retention"]``."""
        samples, where = reference_samples(dataset, self.retention_data)
        device = device_of(model)
        if device is not None:  # the original runs where Accelerate put the trained model
            self.original.to(device)
        report = measure_retention(
            self.original, model, samples, batch_size=cfg.batch_size, log=self.log
        )
        report["reference"] = where
        model.info["retention"] = report
        self.log(
            f"retention (original model vs fine-tuned backbone + original head, {where}): "
            f"top-1 agreement {report['top1_agreement']:.1%}, KL {report['mean_kl']:.4f} nats"
        )
        return report


def measure_retention(
    original: Backbone,
    model: GraftModel,
    samples: Samples,
    *,
    batch_size: int = 64,
    max_samples: int = RETENTION_SAMPLES,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:func:`retention` of ``model``'s backbone on image files.

    Args:
        original: the backbone before training, with its source classifier.
        model: the trained model (its backbone keeps the original classifier, frozen).
        samples: reference images, preprocessed as ``model`` expects.
        batch_size: images per forward pass.
        max_samples: use at most this many images.
        log: where a heartbeat line goes every ~30 s without a terminal (default: stderr).
    """
    loader = image_loader(model, samples, batch_size=batch_size, shuffle=False)
    total = min(len(loader), -(-max_samples // batch_size))
    beats = beating(loader, "retention", total, log, bar=True)
    result: dict[str, Any] = retention(original, model.backbone, beats, max_samples=max_samples)
    result["samples"] = int(result["samples"])
    return result


@torch.no_grad()
def retention(
    original: Backbone,
    finetuned: Backbone,
    data: torch.Tensor | Iterable[Any],
    *,
    device: torch.device | str | None = None,
    max_samples: int | None = None,
) -> dict[str, float]:
    """Agreement of the original and fine-tuned backbones' source-classifier predictions.

    Both run in eval mode (their modes are restored afterwards), each through its own source
    classifier, on a reference set (source-like or target images).

    Args:
        original: the pretrained backbone (e.g. a copy kept before training).
        finetuned: the backbone after training.
        data: a tensor ``(n, channels, height, width)`` or a loader of tensors or tuples.
        device: where the fine-tuned backbone runs; defaults to its device. The original runs
            on its own device.
        max_samples: stop after this many inputs.

    Returns:
        ``top1_agreement`` (fraction of inputs with the same top-1 source class), ``mean_kl``
        (mean ``KL(original ‖ fine-tuned)`` of the source softmax, nats) and ``samples``.
    """
    if original.source_head is None or finetuned.source_head is None:
        raise ConfigError("retention needs both backbones to keep their source classifier")
    dev = device if device is not None else device_of(finetuned)
    batches = [data] if isinstance(data, torch.Tensor) else data
    modes = [(m, m.training) for b in (original, finetuned) for m in b.modules()]
    original.eval()
    finetuned.eval()
    agree, kl_sum, n = 0.0, 0.0, 0
    try:
        for batch in batches:
            x = first_item(batch).to(dev)
            if max_samples is not None:
                x = x[: max_samples - n]
            if len(x) == 0:
                break
            # Each backbone runs where it lives: the original is often kept on the CPU.
            a = original.source_logits(x.to(device_of(original))).to(dev)
            b = finetuned.source_logits(x)
            agree += float((a.argmax(-1) == b.argmax(-1)).sum())
            kl_sum += float(distillation_kl(b, a)) * len(x)
            n += len(x)
    finally:
        for m, mode in modes:
            m.training = mode
    if n == 0:
        raise ConfigError("retention: the reference data is empty")
    return {"top1_agreement": agree / n, "mean_kl": kl_sum / n, "samples": float(n)}
