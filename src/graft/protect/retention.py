"""How much of the source task a fine-tuned backbone still solves (for the model artifact).

When the backbone keeps its original classifier (the bundled ImageNet head, or the head of a
saved graft model used as ``--backbone``), :class:`RetentionReport`, an extension of the loop
without a loss, compares the fine-tuned backbone with the original model on a reference set
after training (top-1 agreement and KL of the source predictions), prints it and stores it in
``model.info["retention"]``, so forgetting is measured, not guessed.

Both passes are frozen passes: each backbone runs through the engine registry
(:func:`graft.backbones.engines.choose_engine`, as the feature store and ``predict`` do: the
fastest engine whose features match eager PyTorch within its stated tolerance, eager on a
short pass), and its source classifier reads those features. The report names
the engine that ran.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graft.backbones.base import Backbone
from graft.backbones.engines import choose_engine
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
            ConfigError: ``retention_data`` given for a backbone without its classifier, or
                for a text backbone (it names image files).
        """
        if retention_data is not None and model.backbone.input_kind != "image":
            raise ConfigError(
                f"--retention-data {retention_data}: reference images, but backbone "
                f"{model.backbone.spec.name!r} reads {model.backbone.input_kind}; drop it (the "
                "report then uses the target's test, else validation, split)"
            )
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
    files = min(len(samples.paths), max_samples)
    result = retention(original, model.backbone, beats, max_samples=max_samples, files=files)
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
    files: int | None = None,
) -> dict[str, Any]:
    """Agreement of the original and fine-tuned backbones' source-classifier predictions.

    Both run in eval mode (their modes are restored afterwards), each through the fastest
    equivalent engine of the frozen passes and then its own source classifier, on a reference
    set (source-like or target inputs).

    Args:
        original: the pretrained backbone (e.g. a copy kept before training).
        finetuned: the backbone after training.
        data: a tensor ``(n, channels, height, width)`` (or packed tokens) or a loader of
            tensors or tuples.
        device: where the fine-tuned backbone runs; defaults to its device. The original runs
            on its own device.
        max_samples: stop after this many inputs.
        files: how many inputs the pass covers (whether probing fast engines pays off);
            default: the tensor's length, else unknown.

    Returns:
        ``top1_agreement`` (fraction of inputs with the same top-1 source class), ``mean_kl``
        (mean ``KL(original ‖ fine-tuned)`` of the source softmax, nats), ``samples`` and
        ``engine`` (the engine of each pass: one name, or ``original, fine-tuned``).
    """
    if original.source_head is None or finetuned.source_head is None:
        raise ConfigError("retention needs both backbones to keep their source classifier")
    dev = device if device is not None else device_of(finetuned)
    if files is None:
        files = len(data) if isinstance(data, torch.Tensor) else 0
    if max_samples is not None and files:
        files = min(files, max_samples)
    inputs = (first_item(b) for b in ([data] if isinstance(data, torch.Tensor) else data))
    modes = [(m, m.training) for b in (original, finetuned) for m in b.modules()]
    original.eval()
    finetuned.eval()
    agree, kl_sum, n = 0.0, 0.0, 0
    try:
        first = next(inputs, None)
        if first is None or (max_samples is not None and max_samples < 1):
            raise ConfigError("retention: the reference data is empty")
        with ExitStack() as stack:
            # Each backbone runs where it lives: the original is often kept on the CPU.
            run_a, engine_a = stack.enter_context(_source_pass(original, first, files))
            run_b, engine_b = stack.enter_context(_source_pass(finetuned, first.to(dev), files))
            for x in itertools.chain([first], inputs):
                if max_samples is not None:
                    x = x[: max_samples - n]
                if len(x) == 0:
                    break
                a, b = run_a(x).to(dev), run_b(x.to(dev))
                agree += float((a.argmax(-1) == b.argmax(-1)).sum())
                kl_sum += float(distillation_kl(b, a)) * len(x)
                n += len(x)
    finally:
        for m, mode in modes:
            m.training = mode
    if n == 0:
        raise ConfigError("retention: the reference data is empty")
    engine = engine_a if engine_a == engine_b else f"{engine_a}, {engine_b}"
    return {
        "top1_agreement": agree / n,
        "mean_kl": kl_sum / n,
        "samples": float(n),
        "engine": engine,
    }


@contextmanager
def _source_pass(
    backbone: Backbone, first: torch.Tensor, files: int
) -> Iterator[tuple[Callable[[torch.Tensor], torch.Tensor], str]]:
    """Source logits of ``backbone`` through its frozen-pass engine, and that engine's name.

    The engine is chosen on ``first`` (a real batch); the source classifier reads the features
    where the backbone lives, in its own dtype.
    """
    head = backbone.source_head
    assert head is not None  # checked by the caller
    device = device_of(backbone) or torch.device("cpu")
    dtype = next((p.dtype for p in head.parameters()), torch.float32)
    kind = backbone.input_kind
    with choose_engine(backbone, first.to(device), input_kind=kind, files=files) as engine:

        def run(x: torch.Tensor) -> torch.Tensor:
            features = torch.from_numpy(engine.run(x)).to(device, dtype=dtype)
            return head(features)

        yield run, engine.name
