"""How much of the source task a fine-tuned backbone still solves (for the model artifact)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from graft.backbones.base import Backbone
from graft.errors import ConfigError
from graft.protect.base import first_item, resolve_device
from graft.protect.lwf import distillation_kl


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
    dev = resolve_device(finetuned, device)
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
            a = original.source_logits(x.to(resolve_device(original, None))).to(dev)
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
