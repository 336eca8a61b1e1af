"""Write the reference sample of a bundled backbone: its features of natural photographs.

    python tools/make_reference_sample.py [--backbone efficientnet_lite0]

There is no ImageNet offline, so the advisor measures the domain gap between the user's data
and the backbone's source against a stand-in: 360 random crops and mirrors of the 15
photographs bundled with scikit-image (``graft.measure.source.reference_crops``: a cat, coffee,
an astronaut, a rocket, a motorcycle, coins, textures, a retina, the moon, ...), passed through the backbone's own evaluation preprocessing at several
input sizes. scikit-image is a development dependency only, so the features are computed here
once and shipped as ``src/graft/backbones/reference/<backbone>.npz`` (float16). Rerun this
script when the bundled weights or the preprocessing (``TRANSFORM_VERSION``) change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

# 32 px is left out: the bundled efficientnet_lite0 outputs all-zero features at that size.
SIZES = (224, 160, 128, 112, 96, 64)
OUT = Path(__file__).resolve().parents[1] / "src" / "graft" / "backbones" / "reference"


def main() -> None:
    from graft.backbones import create
    from graft.data.transforms import build_transform, transform_identity
    from graft.measure.source import REFERENCE_CROPS, REFERENCE_PHOTOS, reference_crops

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args()
    images = reference_crops()
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, object] = {
        "images": list(REFERENCE_PHOTOS),
        "crops": REFERENCE_CROPS,
        "sizes": {},
    }
    for size in SIZES:
        bb = create(args.backbone, image_size=size).eval()
        tf = build_transform(bb.data_config, train=False)
        with torch.inference_mode():
            feats = bb(torch.stack([tf(im) for im in images])).numpy()  # type: ignore[arg-type]
        arrays[f"size{size}"] = feats.astype(np.float16)
        meta["sizes"][str(size)] = transform_identity(bb.data_config)  # type: ignore[index]
        meta["identity"] = bb.identity()
        print(f"size {size}: {feats.shape}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{args.backbone}.npz"
    np.savez_compressed(path, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
