"""``graft rank``, ``graft similarity`` and ``graft advise``: measure before training.

Each maps one to one to :func:`graft.rank`, :func:`graft.similarity` and :func:`graft.advise`;
all three read the backbone's features from the feature store that ``graft fit`` uses.
"""

from __future__ import annotations

import argparse
from typing import Any

from graft.cli._commands import Handler
from graft.cli._flags import add_backbone_options as _add_backbone_options
from graft.config import SPLIT_FRACTION


def register(sub: Any) -> dict[str, Handler]:
    _rank_parser(sub)
    _similarity_parser(sub)
    _advise_parser(sub)
    return {"rank": cmd_rank, "similarity": cmd_similarity, "advise": cmd_advise}


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", help="feature store folder (the one `graft fit` reads)")
    p.add_argument("--batch-size", type=int, default=64, help="images per backbone forward")
    p.add_argument("--seed", type=int, default=0, help="data split and random-init seed")
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars"
    )


def _text_options(p: argparse.ArgumentParser, *, labels: bool = True, length: bool = False) -> None:
    p.add_argument("--text-column", help="table column holding texts: the data are texts")
    if labels:
        p.add_argument("--label-column", help="table column holding class labels")
    if length:  # the backbone options carry --max-length where they are added
        p.add_argument("--max-length", type=int, help="texts: tokens per text (default: model's)")


def _rank_parser(sub: Any) -> None:
    p = sub.add_parser("rank", help="rank candidate backbones on your data by a score")
    p.add_argument("data", help="image or text folder (root/<class>/*) or CSV/Parquet table")
    p.add_argument(
        "--backbones",
        required=True,
        type=lambda s: [b for b in s.split(",") if b.strip()],
        help="comma-separated candidates; tag one with @random (random init) or @SIZE "
        "(input size), e.g. efficientnet_lite0,efficientnet_lite0@112,timm:resnet18@random",
    )
    p.add_argument("--score", default="logme", help="logme (default), leep, nce, hscore, ...")
    p.add_argument("--task", choices=["classification", "regression"])
    p.add_argument("--image-size", type=int, help="input size for untagged candidates")
    p.add_argument("--num-workers", type=int, default=0, help="image-decoding processes")
    _text_options(p, length=True)
    _store_options(p)


def cmd_rank(args: argparse.Namespace) -> int:
    from graft.workflows.measure import rank

    ranking = rank(
        args.data,
        backbones=args.backbones,
        score=args.score,
        task=args.task,
        image_size=args.image_size,
        max_length=args.max_length,
        text_column=args.text_column,
        label_column=args.label_column,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        seed=args.seed,
        progress=args.progress,
    )
    print(f"{ranking.score} on {ranking.data} ({ranking.citation}); higher is better")
    print(ranking.table())
    print(f"total {ranking.seconds:.1f}s")
    return 0


def _similarity_parser(sub: Any) -> None:
    p = sub.add_parser("similarity", help="domain gap between two image (or text) collections")
    p.add_argument(
        "source", help="images or texts like the backbone's (or a model's) training data"
    )
    p.add_argument("target", help="yours (a folder, class subfolders optional, or a table)")
    _add_backbone_options(p)
    p.add_argument("--max-samples", type=int, default=2000, help="at most this many items per side")
    _text_options(p, labels=False)
    _store_options(p)


def cmd_similarity(args: argparse.Namespace) -> int:
    from graft.workflows.measure import similarity

    gap = similarity(
        args.source,
        args.target,
        backbone=args.backbone,
        weights=args.weights,
        pretrained=args.pretrained,
        image_size=args.image_size,
        max_length=args.max_length,
        text_column=args.text_column,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        seed=args.seed,
        progress=args.progress,
    )
    print(
        f"source {gap.n_source} {gap.items}, target {gap.n_target} {gap.items}, {gap.dim} features"
    )
    print(f"  MMD² (RBF, median heuristic)  {gap.mmd:8.4f}   (0 = same distribution)")
    print(f"  proxy A-distance              {gap.proxy_a_distance:8.4f}   (0 = indistinguishable, 2 = separable)")  # fmt: skip
    print(f"    95% interval                [{gap.proxy_a_low:.2f}, {gap.proxy_a_high:.2f}]  (on the source's top {gap.components} principal components)")  # fmt: skip
    print(f"  CORAL distance                {gap.coral:8.4g}   (covariance mismatch)")
    print(gap.reading)
    return 0


def _advise_parser(sub: Any) -> None:
    p = sub.add_parser("advise", help="what --strategy auto would choose, without training")
    p.add_argument("data", help="image or text folder (root/<class>/*) or CSV/Parquet table")
    p.add_argument("--task", choices=["classification", "regression"])
    _add_backbone_options(p)
    _text_options(p)
    p.add_argument("--score", default="logme", help="transferability score (registered name)")
    p.add_argument("--val-fraction", type=float, default=SPLIT_FRACTION, help="as in graft fit")
    p.add_argument("--test-fraction", type=float, default=SPLIT_FRACTION, help="as in graft fit")
    _store_options(p)


def cmd_advise(args: argparse.Namespace) -> int:
    from graft.workflows.advise import advise

    advice = advise(
        args.data,
        task=args.task,
        backbone=args.backbone,
        weights=args.weights,
        pretrained=args.pretrained,
        image_size=args.image_size,
        max_length=args.max_length,
        text_column=args.text_column,
        label_column=args.label_column,
        score=args.score,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=args.progress,
    )
    print("\n".join(advice.lines()))
    print(
        f"measured in {advice.seconds:.1f}s; graft fit with the same options (--strategy auto) reuses it"
    )
    return 0
