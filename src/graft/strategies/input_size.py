"""The advisor's input-size rule: which sizes to measure, and which one to take (pure).

Images much smaller than a backbone's native input (8x8 digits, 28x28 Fashion-MNIST against
EfficientNet-Lite0's 224 px) need not be upsampled that far: every doubling of the side costs
about four times the compute per epoch. :func:`graft.measure.advise.search_size` measures a
linear probe on stored features at the sizes :func:`size_candidates` lists (one frozen pass
each) and takes the one :func:`pick_size` picks.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The input-size search: candidates start at the images' side rounded up to a multiple of this.
SIZE_STEP = 32
#: Images whose side is at most this share of the backbone's native side are "much smaller".
SIZE_SEARCH_RATIO = 0.5
#: At most this many candidate sizes (each costs one frozen pass through the feature store).
SIZE_CANDIDATES = 3


def size_candidates(side: int | None, native: int) -> tuple[int, ...]:
    """Input sizes worth measuring for images of ``side`` px on a backbone of ``native`` px.

    Empty when the images are not much smaller than the native size (more than
    ``SIZE_SEARCH_RATIO`` of it): the native size stays. Otherwise the images' side rounded up
    to a multiple of ``SIZE_STEP`` (at least one step), doubling, below the native size, at most
    ``SIZE_CANDIDATES``; a single candidate is compared with the native size.

    Example:
        >>> size_candidates(28, 224)
        (32, 64, 128)
    """
    if side is None or side > native * SIZE_SEARCH_RATIO:
        return ()
    start = max(SIZE_STEP, -(-side // SIZE_STEP) * SIZE_STEP)
    sizes = [start * 2**k for k in range(SIZE_CANDIDATES) if start * 2**k < native]
    return tuple(sizes if len(sizes) > 1 else [*sizes, native])


def pick_size(probes: Sequence[tuple[int, float]], noise: float) -> int:
    """The smallest size whose probe is within ``noise`` of the best one.

    The one-standard-error rule (Hastie, Tibshirani & Friedman, *The Elements of Statistical
    Learning*, 2nd ed., 2009, section 7.10): among candidates the validation set cannot tell
    apart, the cheapest; here ``noise`` is one standard error of the best probe's metric.
    """
    best = max(p for _, p in probes)
    return min(s for s, p in probes if p >= best - noise)
