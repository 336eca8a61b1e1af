"""``graft fit`` / ``graft adapt`` options for the regularizers and the retention report.

Each flag is the :func:`graft.fit` keyword of the same name: ``--regularize`` ↔ ``regularize``,
``--regularize-strength`` ↔ ``regularize_strength``, ``--regularize-options`` ↔
``regularize_options``, ``--ewc-data`` ↔ ``ewc_data``, ``--no-retention`` ↔
``retention=False``, ``--retention-data`` ↔ ``retention_data``.
"""

from __future__ import annotations

import argparse
from typing import Any

KEYWORDS = (
    "regularize",
    "regularize_strength",
    "regularize_options",
    "ewc_data",
    "retention",
    "retention_data",
)


def add_options(p: argparse.ArgumentParser) -> None:
    """Add the options to a ``fit``-like parser."""
    from graft.cli import parse_options

    g = p.add_argument_group("keep what the backbone knew (in stages that train the backbone)")
    g.add_argument(
        "--regularize",
        help="ewc (Fisher-weighted pull to the pretrained weights), l2sp (pull to the "
        "pretrained weights, weight decay on the head), lwf (distil the original model)",
    )
    g.add_argument(
        "--regularize-strength",
        type=float,
        help="the method's strength: ewc/lwf lam (default 1), l2sp alpha (default 0.1)",
    )
    g.add_argument(
        "--regularize-options",
        type=parse_options,
        help="its other options, e.g. temperature=2 (lwf), beta=0.01 (l2sp), "
        "samples=256,fisher=sampled (ewc)",
    )
    g.add_argument(
        "--ewc-data",
        help="source-like images for EWC's Fisher (default: the target training images, "
        "labelled by the original model's own predictions)",
    )
    g.add_argument(
        "--no-retention",
        dest="retention",
        action="store_false",
        help="skip the retention report (agreement with the original model after training)",
    )
    g.add_argument(
        "--retention-data",
        help="reference images for the retention report (default: the test, else val split)",
    )


def fit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`graft.fit` keywords of these options."""
    return {k: getattr(args, k) for k in KEYWORDS if hasattr(args, k)}
