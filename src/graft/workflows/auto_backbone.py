"""``--backbone auto``: rank the bundled image backbones on the data, and take the best.

Each candidate of :data:`AUTO_BACKBONES` is ranked by ``graft rank``'s score
(:func:`graft.workflows.measure.rank`) on the fit's own data. When the user gave no
``--image-size`` and the images are much smaller than a candidate's native size, the candidate
is ranked at each input size the advisor would consider for it
(:func:`graft.measure.advise.searched_sizes`), so the ranking is over (backbone, size) pairs; the
backbone of the best pair is picked, and its input size is then chosen by the one size rule
graft has (:func:`graft.measure.advise.search_size`: the smallest size whose linear probe is
within one standard error of the best), exactly as for ``--backbone NAME``. The score ranks
backbones; it has no noise estimate to tell two sizes of one backbone apart, and the larger
size usually scores a little higher at four times the compute per epoch. With ``--image-size``
every candidate is ranked at that size only. Every pair's features stay in the feature store,
so the size rule and the fit reuse them without another backbone pass. The ranking goes into
the run record (``backbone_ranking``), the model card and the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graft.backbones.bundled import BUNDLED
from graft.config import FitConfig
from graft.data.base import Dataset
from graft.data.images import typical_side
from graft.errors import ConfigError
from graft.measure.advise import searched_sizes
from graft.workflows.measure import Ranking, parse_candidate, rank

#: ``--backbone auto``: the bundled image candidates, ranked on the data by ``graft rank``.
AUTO_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


@dataclass(frozen=True)
class AutoBackbone:
    """What ``--backbone auto`` picked, and the ranking it picked from.

    Args:
        backbone: the picked backbone's name (the best pair's backbone); it is built as
            ``--backbone NAME`` would be, at ``--image-size`` or the size rule's size.
        ranking: every candidate (``name`` or ``name@SIZE``) with its score, best first.
        lines: the ranking as logged.
    """

    backbone: str
    ranking: Ranking
    lines: tuple[str, ...]

    def to_dict(self, image_size: int | None) -> dict[str, Any]:
        """The run record's ``backbone_ranking`` (JSON-ready), with ``image_size``, the input
        size the fit trained at."""
        return {
            "score": self.ranking.score,
            "candidates": [
                {"candidate": r.backbone, "score": r.score, "seconds": round(r.seconds, 2)}
                | ({"note": r.note} if r.note else {})
                for r in self.ranking.rows
            ],
            "picked": self.ranking.best.backbone if self.ranking.best else None,
            "backbone": self.backbone,
            "image_size": image_size,
            "seconds": round(self.ranking.seconds, 2),
            "lines": list(self.lines),
        }


def auto_candidates(dataset: Dataset, cfg: FitConfig) -> list[str]:
    """The candidates ``--backbone auto`` ranks, as ``graft rank`` takes them (``name[@SIZE]``).

    Each bundled backbone at the input sizes the advisor would measure for it (images much
    smaller than its native size, no ``--image-size``, pretrained weights); otherwise at the
    configured size (``rank``'s ``image_size``), or its native one.
    """
    out: list[str] = []
    search = cfg.model.image_size is None and cfg.model.pretrained
    side = typical_side(dataset.train.paths) if search else None
    for name in AUTO_BACKBONES:
        native = BUNDLED.get(name).data_config.image_size
        sizes = searched_sizes(dataset, native, side=side) if search else ()
        tag = "" if cfg.model.pretrained else "@random"
        out += [f"{name}{tag}@{s}" for s in sizes] or [f"{name}{tag}"]
    return out


def rank_auto(dataset: Dataset, cfg: FitConfig, *, log: Callable[[str], None]) -> AutoBackbone:
    """``--backbone auto``: the backbone of the best of :func:`auto_candidates` by ``graft
    rank``'s score, the ranking logged (the input size is left to the size rule).

    Raises:
        ConfigError: ``--weights`` given (a weights file fits one architecture), or no
            candidate could be scored on this data.
    """
    if cfg.model.weights is not None:
        raise ConfigError(
            f"--backbone auto with --weights {cfg.model.weights}: auto ranks the bundled "
            "backbones with their own weights; pass --backbone NAME for the weights' architecture"
        )
    t = cfg.training
    candidates = auto_candidates(dataset, cfg)
    ranking = rank(
        dataset, backbones=candidates, image_size=cfg.model.image_size,
        cache_dir=t.cache_dir, batch_size=t.batch_size, seed=t.seed,
    )  # fmt: skip
    best = ranking.best
    if best is None:
        raise ConfigError(
            "--backbone auto: no candidate could be scored on this data "
            f"({'; '.join(r.note for r in ranking.rows if r.note)}); pass --backbone NAME"
        )
    name = parse_candidate(best.backbone)[0]
    sized = len(candidates) > len(AUTO_BACKBONES)
    how = f"bundled candidates ranked by {ranking.score}"
    if sized:
        how += " (each backbone at the input sizes the advisor considers for these images)"
    lines = [f"--backbone auto: {len(ranking.rows)} {how}:"]
    lines += [f"  {line}" for line in ranking.table().splitlines()[:-1]]
    lines.append(f"  → {name}" + (" (its input size: the size rule)" if sized else ""))
    for line in lines:
        log(line)
    return AutoBackbone(backbone=name, ranking=ranking, lines=tuple(lines))
