"""``graft demo``: the main job on an embedded default, offline, in a few minutes on a laptop CPU.

Writes scikit-learn's real handwritten digits as an image folder, transfers the bundled
ImageNet EfficientNet-Lite0 to them with two-stage fine-tuning, and prints the plan, the
test metrics on a held-out split, the time taken, and a predict command to try.
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_IMAGE_SIZE = 64
DEMO_EPOCHS = 4


def run_demo(
    out: str | Path = "graft-demo", *, epochs: int | None = None, progress: bool = True
) -> Path:
    """Run the demo; return the saved model's folder."""
    import graft
    from graft.data.digits import write_digits
    from graft.evaluate.metrics import format_metrics

    started = time.perf_counter()
    root = Path(out)
    data_dir = write_digits(root / "digits")
    print(f"data: scikit-learn's handwritten digits written as images to {data_dir}")
    model_dir = root / "model"
    model = graft.fit(
        data_dir,
        backbone="efficientnet_lite0",
        strategy="two_stage",
        strategy_options={"top": 2, "lr_factor": 0.1, "head_epochs": 3 * (epochs or DEMO_EPOCHS)},
        epochs=epochs or DEMO_EPOCHS,
        lr=3e-3,
        image_size=DEMO_IMAGE_SIZE,
        batch_size=64,
        cache_dir=str(root / "cache"),
        progress=progress,
        out=model_dir,
    )
    elapsed = time.perf_counter() - started
    print("\ntest metrics (held-out split):")
    print(format_metrics(model.info["metrics"]["test"]))
    example = next(p for p in sorted((data_dir / "7").iterdir()))
    print(f"\ntime: {elapsed:.1f}s")
    print(f"model saved to {model_dir}")
    print(f"try:  graft predict {model_dir} {example}")
    return model_dir
