"""What a backbone's source adds to measuring: its classifier's probabilities and a reference sample.

Source-classifier probabilities (for LEEP and NCE) come from stored features through the
backbone's kept ``source_head``, never from another pass over the images. The reference sample
kept with each bundled backbone stands in for the source data in the domain gap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.backbones.base import Backbone
from graft.data.transforms import transform_identity
from graft.errors import ConfigError
from graft.measure.gap import GapReport, domain_gap
from graft.measure.scores import SCORES, score

#: The transferability score used when none is named.
DEFAULT_SCORE = "logme"
#: Reference features of the bundled backbones (``tools/make_reference_sample.py``).
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "backbones" / "reference"
#: The photographs bundled with scikit-image that the reference sample crops (no download).
REFERENCE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "grass", "gravel", "brick",
    "hubble_deep_field", "immunohistochemistry", "stereo_motorcycle", "retina", "moon", "clock",
)  # fmt: skip
#: Random crops per photograph in the reference sample (15 x 24 = 360).
REFERENCE_CROPS = 24


def source_probabilities(backbone: Backbone, features: np.ndarray) -> np.ndarray:
    """Softmax of the backbone's original classifier on stored features (no image pass).

    Shape:
        ``features``: ``(n, dim)``; returns ``(n, source classes)`` float64.

    Raises:
        ConfigError: the backbone kept no source classifier (LEEP and NCE need one).
    """
    head = backbone.source_head
    if head is None:
        raise ConfigError(
            f"backbone {backbone.spec.name!r} has no source classifier, so LEEP/NCE cannot be "
            "computed; use --score logme (or hscore)"
        )
    out = []
    with torch.inference_mode():
        for start in range(0, len(features), 4096):
            x = torch.as_tensor(features[start : start + 4096], dtype=torch.float32)
            out.append(torch.softmax(head(x).double(), dim=1).numpy())
    return np.concatenate(out)


def measure_score(
    name: str, backbone: Backbone, features: np.ndarray, targets: np.ndarray, task: str
) -> float:
    """The registered score ``name`` on stored features (source probabilities if it needs them).

    Raises:
        ConfigError: the task has no scores (multi-label, multi-task) or the score does not
            apply to it.
    """
    if task not in ("classification", "regression"):
        raise ConfigError(
            f"transferability scores cover classification and regression, not {task}; "
            "rank on one of its targets instead"
        )
    spec = SCORES.get(name)
    probs = source_probabilities(backbone, features) if spec.needs == "source_probs" else None
    return score(name, targets=targets, task=task, features=features, source_probs=probs)  # type: ignore[arg-type]


def reference_crops(per_photo: int = REFERENCE_CROPS, seed: int = 0) -> list[Any]:
    """Random square crops of scikit-image's bundled photographs, as RGB PIL images.

    Each crop's side is a uniform 25-100% of the photograph's shorter side, at a uniform
    position, mirrored with probability 1/2; grayscale photographs are repeated to RGB.
    scikit-image is a development dependency: ``tools/make_reference_sample.py`` runs this
    once per bundled backbone and ships the features.

    Args:
        per_photo: crops per photograph.
        seed: the crops' seed (the shipped sample uses 0).
    """
    from PIL import Image
    from skimage import data as photos

    rng = np.random.default_rng(seed)
    out = []
    for name in REFERENCE_PHOTOS:
        arr = getattr(photos, name)()
        arr = np.asarray(arr[0] if isinstance(arr, tuple) else arr)  # stereo: the left view
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        img = Image.fromarray(arr[..., :3].astype(np.uint8)).convert("RGB")
        w, h = img.size
        for _ in range(per_photo):
            side = int(min(w, h) * rng.uniform(0.25, 1.0))
            left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            crop = img.crop((left, top, left + side, top + side))
            out.append(
                crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop
            )
    return out


def reference_features(backbone: Backbone) -> tuple[np.ndarray | None, str]:
    """The bundled backbone's features of its reference sample at this preprocessing.

    The reference sample stands in for the source data (there is no ImageNet offline): the
    backbone's features of 360 random crops (:func:`reference_crops`) of the 15 photographs
    bundled with scikit-image (:data:`REFERENCE_PHOTOS`: a cat, coffee, an astronaut, a rocket,
    a motorcycle, coins, textures, a retina, the moon, ...), at each input size the file
    covers; ``tools/make_reference_sample.py`` writes it.

    Returns:
        ``(features, note)``: features ``(n, dim)`` float32, or None with the reason.
    """
    spec = backbone.spec
    if backbone.input_kind == "text":
        return None, (
            f"no sample of {spec.name!r}'s pretraining texts ships with graft, so the gap to "
            "its source cannot be measured; the advisor assumes a moderate gap"
        )
    path = REFERENCE_DIR / f"{spec.name}.npz"
    if spec.source != "bundled" or not path.exists():
        return None, f"no reference sample is kept for {spec.name!r} ({spec.source} weights)"
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        wanted = transform_identity(backbone.data_config)
        for size, identity in meta["sizes"].items():
            if identity == wanted:
                ref = npz[f"size{size}"].astype(np.float32)
                return (
                    ref,
                    f"{len(ref)} crops of natural photographs at {size} px (reference sample)",
                )
    sizes = ", ".join(meta["sizes"])
    return None, (
        f"the reference sample of {spec.name!r} covers input sizes {sizes} px, not "
        f"{backbone.data_config.image_size}; pass --image-size with one of them to measure it"
    )


def gap_to_source(
    backbone: Backbone, features: np.ndarray, seed: int = 0
) -> tuple[GapReport | None, str]:
    """The domain gap between ``features`` and the backbone's reference sample, with a note."""
    ref, note = reference_features(backbone)
    if ref is None:
        return None, note
    return domain_gap(ref, features, seed=seed), note
