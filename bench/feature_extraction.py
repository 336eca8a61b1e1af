"""Benchmark: what the FeatureStore costs on the first pass and saves on every later one.

(a) Extraction throughput: ``FeatureStore.extract`` into a fresh store (hashing, shard writes
    included) against a plain ``for batch in DataLoader(files): model(batch)`` loop with the
    same load function and batch size. Target: ratio >= 0.9.
(b) Training cost of a linear head for ``--epochs`` epochs: extract once + train on the stored,
    memory-mapped features, against the textbook frozen-backbone loop that runs the backbone
    (eval mode, no grad) every epoch. Target: speedup >= 10x. Also shown: a second fit when the
    features are already stored (trying another head or learning rate).

(c) Engines (issue 14): images/s of a plain timm loop (``timm.create_model`` + DataLoader),
    graft's eager path (``GRAFT_ENGINE=eager``) and graft's fast path (the engine the store
    picks) at 224 px and at the demo's 64 px, in one run. Target: fast >= 3x plain at 224 px.
    The last column is ``GraftModel.predict_outputs`` on the same files (its backbone pass takes
    the same engines).
    ``--engines-only`` runs just this part.

Real handwritten digits (scikit-learn) written as PNGs, upscaled. Run by hand::

    OMP_NUM_THREADS=2 python bench/feature_extraction.py --n-files 256 --image-size 128
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from graft.backbones.base import Backbone, BackboneSpec, DataConfig
from graft.measure.features import FeatureStore
from graft.model import GraftModel
from graft.tasks import Classification


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-files", type=int, default=256)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="(a) is timed this often, best kept")
    p.add_argument("--engines-only", action="store_true", help="only part (c), the engines")
    p.add_argument("--engine-sizes", default="224,64", help="(c) image sizes, comma-separated")
    return p.parse_args()


def make_backbone(name: str, image_size: int) -> Backbone:
    """The bundled backbone via graft.backbones.create; a random-weight timm model otherwise."""
    from graft.errors import GraftError

    try:
        from graft.backbones import create

        return create(name, image_size=image_size)
    except (ImportError, GraftError) as e:
        print(f"(graft.backbones.create unavailable: {e}; using timm {name}, random weights)")
    import timm

    model = timm.create_model(name, pretrained=False)
    spec = BackboneSpec(name=name, arch=name, source="timm", pretrained=False)
    return Backbone(model, spec, DataConfig(input_size=(3, image_size, image_size)), groups=[])


class Load:
    """Decode one PNG and preprocess it for the backbone (picklable for DataLoader workers)."""

    def __init__(self, config: DataConfig) -> None:
        self.config = config
        self.mean = torch.tensor(config.mean).view(-1, 1, 1)
        self.std = torch.tensor(config.std).view(-1, 1, 1)

    def __call__(self, path: Path) -> torch.Tensor:
        size = self.config.image_size
        img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - self.mean) / self.std


class Files(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, paths: list[Path], targets: np.ndarray, load: Load) -> None:
        self.paths, self.targets, self.load = paths, targets, load

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.load(self.paths[i]), int(self.targets[i])


def write_digits(folder: Path, n: int) -> tuple[list[Path], np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(n):
        j = i % len(digits.images)
        pixels = (digits.images[j] * (255 / 16)).astype(np.uint8)
        img = Image.fromarray(pixels).resize((64, 64), Image.Resampling.BICUBIC)
        # Distinct bytes per file even when the digit repeats: the store keys by content.
        img.putpixel((0, 0), i % 256)
        img.putpixel((1, 0), i // 256 % 256)
        paths.append(folder / f"{i:05d}.png")
        img.save(paths[-1])
    return paths, digits.target[np.arange(n) % len(digits.images)]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_pass(model: Backbone, loader: torch.utils.data.DataLoader[Any]) -> None:
    model.eval()
    with torch.inference_mode():
        for x, _ in loader:
            model(x)


def head_step(
    head: nn.Linear, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> None:
    loss = nn.functional.cross_entropy(head(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def textbook_training(model: Backbone, files: Files, args: argparse.Namespace) -> None:
    """The frozen-backbone loop of most tutorials: the backbone runs on every batch, every epoch."""
    head = nn.Linear(model.num_features, 10)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        files, batch_size=args.batch_size, shuffle=True, num_workers=args.num_workers
    )
    model.eval()
    for _ in range(args.epochs):
        for x, y in loader:
            with torch.no_grad():
                feats = model(x)
            head_step(head, opt, feats, y)


def stored_training(
    model: Backbone, store: FeatureStore, files: Files, args: argparse.Namespace
) -> None:
    feats = store.extract(
        model,
        files.paths,
        load=files.load,
        transform_id="bench",
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        progress=False,
    )
    head = nn.Linear(feats.dim, 10)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    targets = torch.as_tensor(files.targets)
    rng = np.random.default_rng(0)
    for _ in range(args.epochs):
        order = rng.permutation(len(feats))
        for idx in np.array_split(order, max(1, len(order) // args.batch_size)):
            head_step(head, opt, torch.from_numpy(feats[idx]), targets[idx])


def engine_row(args: argparse.Namespace, root: Path, size: int) -> str:
    """(c) at one size: plain timm loop, graft eager, graft fast; images/s and the ratio."""
    import os

    import timm

    model = make_backbone(args.backbone, size).eval()
    (root / f"img{size}").mkdir()
    paths, targets = write_digits(root / f"img{size}", args.n_files)
    files = Files(paths, targets, Load(model.data_config))
    loader = torch.utils.data.DataLoader(files, batch_size=args.batch_size)
    bare = timm.create_model(model.spec.arch, pretrained=False, num_classes=0, **model.spec.kwargs)
    bare.load_state_dict(model.model.state_dict(), strict=False)
    plain_pass(bare, loader)  # warm-up

    def graft_pass(engine: str | None, tag: str) -> tuple[float, str]:
        if engine:
            os.environ["GRAFT_ENGINE"] = engine
        else:
            os.environ.pop("GRAFT_ENGINE", None)
        store = FeatureStore(root / f"{tag}{size}")
        t = timed(
            lambda: store.extract(
                model,
                paths,
                load=files.load,
                transform_id="bench",
                batch_size=args.batch_size,
                progress=False,
            )
        )
        import json

        meta = json.loads(next(store.root.glob("*/meta.json")).read_text())
        return t, ",".join(meta.get("engines", []))

    t_plain = min(timed(lambda: plain_pass(bare, loader)) for _ in range(args.repeats))
    t_eager, _ = graft_pass("eager", "eager")
    t_fast, used = graft_pass(None, "fast")
    # model.predict (a new head on the same backbone) takes the same engines (its export cached).
    predictor = GraftModel(model, Classification.spec_for([str(i) for i in range(10)]))
    t_predict = timed(lambda: predictor.predict_outputs(paths, batch_size=args.batch_size))
    n = args.n_files
    return (
        f"| {size} | {n / t_plain:.1f} | {n / t_eager:.1f} | {n / t_fast:.1f} ({used}) "
        f"| {t_plain / t_fast:.2f}x | {n / t_predict:.1f} |"
    )


def engines_table(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.engine_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [engine_row(args, Path(tmp), size) for size in sizes]
    print(
        f"\n{args.backbone}, {args.n_files} files, batch {args.batch_size}, {args.threads} threads"
    )
    print(
        "| px | plain timm loop img/s | graft eager img/s | graft fast img/s (engine) | fast/plain "
        "| model.predict img/s |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.engines_only:
        engines_table(args)
        return
    model = make_backbone(args.backbone, args.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "img").mkdir()
        paths, targets = write_digits(root / "img", args.n_files)
        files = Files(paths, targets, Load(model.data_config))
        loader = torch.utils.data.DataLoader(
            files, batch_size=args.batch_size, num_workers=args.num_workers
        )
        plain_pass(model, loader)  # warm-up: page cache, allocator, oneDNN kernels per shape
        n = args.n_files

        def extract(store: FeatureStore) -> object:
            return store.extract(
                model,
                paths,
                load=files.load,
                transform_id="bench",
                batch_size=args.batch_size,
                num_workers=args.num_workers,
                progress=False,
            )

        # Interleaved repeats, best of each: the machine is shared, noise only ever adds time.
        plain, fresh = [], []
        for r in range(args.repeats):
            plain.append(timed(lambda: plain_pass(model, loader)))
            fresh.append(timed(lambda r=r: extract(FeatureStore(root / f"a{r}"))))  # type: ignore[misc]
        t_plain, t_store = min(plain), min(fresh)
        t_reuse = timed(lambda: extract(FeatureStore(root / "a0")))
        t_textbook = timed(lambda: textbook_training(model, files, args))
        t_cold = timed(lambda: stored_training(model, FeatureStore(root / "b"), files, args))
        t_warm = timed(lambda: stored_training(model, FeatureStore(root / "b"), files, args))

    print(
        f"\n{args.backbone}, {n} files at {args.image_size}px, batch {args.batch_size}, "
        f"{args.threads} threads, {args.num_workers} workers\n"
    )
    print("| measurement | seconds | images/s |")
    print("|---|---:|---:|")
    print(f"| plain DataLoader + model loop | {t_plain:.2f} | {n / t_plain:.1f} |")
    print(f"| FeatureStore.extract, fresh store | {t_store:.2f} | {n / t_store:.1f} |")
    print(f"| FeatureStore.extract, all stored | {t_reuse:.3f} | {n / t_reuse:.0f} |")
    print(f"| textbook frozen loop, {args.epochs} epochs | {t_textbook:.2f} | |")
    print(f"| extract once + {args.epochs} epochs on stored features | {t_cold:.2f} | |")
    print(f"| same, features already stored | {t_warm:.3f} | |")
    print(
        f"\nextraction throughput ratio (store / plain): {t_plain / t_store:.3f}  (target >= 0.9)"
    )
    print(f"training speedup, cold store: {t_textbook / t_cold:.1f}x  (target >= 10x)")
    print(f"training speedup, warm store: {t_textbook / t_warm:.0f}x")
    engines_table(args)


if __name__ == "__main__":
    main()
