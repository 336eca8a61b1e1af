"""``graft.advise`` and the fit hook: the advisor measures real data, then decides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graft.data import load
from graft.measure.probes import PIXEL_SIZE
from graft.measure.stored import split_features, store_config
from graft.strategies.input_size import pick_size
from graft.workflows.advise import advise


def test_the_front_door_reaches_the_workflow() -> None:
    import graft

    assert graft.advise is advise


def test_guard_fires_when_pretrained_features_lose_to_pixels(
    digits_dir: Path, tmp_path: Path
) -> None:
    # Built deliberately: 8x8 digits blown up to 64 px are far from ImageNet, and a linear
    # probe on 16x16 pixels beats one on the bundled backbone's features there.
    advice = advise(digits_dir, image_size=64, cache_dir=str(tmp_path))
    f = advice.facts
    assert f.probe is not None and f.pixel_probe is not None and f.probe < f.pixel_probe
    assert advice.guard and advice.strategy != "feature_extraction"
    assert f.gap == "far" and "FEATURES LOSE" in "\n".join(advice.lines())
    (guard,) = [line for line in advice.lines() if line.startswith("  guard: ")]
    assert f.pixel_size == PIXEL_SIZE and f"{PIXEL_SIZE}x{PIXEL_SIZE} pixels" in guard


def test_a_random_backbone_has_no_reference_sample(digits_dir: Path, tmp_path: Path) -> None:
    advice = advise(
        digits_dir,
        backbone="timm:test_efficientnet",
        pretrained=False,
        image_size=32,
        cache_dir=str(tmp_path),
    )
    assert advice.facts.gap is None and "gap to the source: not measured" in advice.lines()[3]
    assert advice.lines()[2] == "  input size 32 px: yours (--image-size), kept (images are 32 px)"
    assert advice.facts.score is not None and advice.facts.probe is not None


def test_fit_defaults_to_auto_and_records_the_advice(digits_dir: Path, tmp_path: Path) -> None:
    import graft

    lines: list[str] = []
    model = graft.fit(
        digits_dir,
        backbone="timm:test_efficientnet",
        pretrained=False,
        image_size=32,
        dry_run=True,
        cache_dir=str(tmp_path),
        progress=False,
        log=lines.append,
    )
    advice = model.info["advice"]
    assert advice["lines"][0].startswith("advice: ") and advice["lines"][0] in lines
    assert model.info["plan"]["strategy"] == advice["strategy"]
    assert "chosen by --strategy auto" in model.info["plan"]["notes"][-1]
    assert json.loads(json.dumps(advice))["lines"] == advice["lines"], "JSON-ready for the artifact"


def test_natural_photos_get_a_head_first_plan_without_the_guard(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    data = pytest.importorskip("skimage.data")
    rng = np.random.default_rng(0)
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        img = Image.fromarray(getattr(data, name)())
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(10):
            side = int(min(img.size) * rng.uniform(0.4, 0.8))
            left, top = (int(rng.integers(0, s - side + 1)) for s in img.size)
            crop = img.crop((left, top, left + side, top + side)).resize((96, 96))
            crop.save(tmp_path / "photos" / name / f"{i}.png")
    advice = advise(tmp_path / "photos", image_size=64, cache_dir=str(tmp_path / "store"))
    assert advice.facts.gap in ("near", "moderate") and not advice.guard
    assert advice.strategy in ("feature_extraction", "two_stage")
    assert advice.options.get("fraction") is None, "small data near the source: top groups only"


def test_the_advisor_picks_a_smaller_input_size_for_small_images(
    digits_dir: Path, tmp_path: Path
) -> None:
    """32 px digits against Lite0's 224 px: sizes 32, 64 and 128 are probed on stored features."""
    import graft

    advice = advise(digits_dir, cache_dir=str(tmp_path))
    f = advice.facts
    assert (f.data_side, f.native_size, f.size_given) == (32, 224, False)
    assert [s for s, _ in f.size_probes] == [32, 64, 128] and f.size_noise is not None
    assert f.image_size == pick_size(f.size_probes, f.size_noise) < 224
    assert f"input size {f.image_size} px: images are 32 px" in "\n".join(advice.lines())
    assert f"at {f.image_size} px" in f.gap_note, "the rest is measured at the chosen size"
    lines: list[str] = []
    model = graft.fit(digits_dir, dry_run=True, cache_dir=str(tmp_path), log=lines.append)
    assert model.data_config.image_size == model.backbone.data_config.image_size == f.image_size
    recorded = model.info["advice"]["facts"]
    assert tuple(map(tuple, recorded["size_probes"])) == f.size_probes, "saved with the model"
    stored = split_features(model.backbone, load(digits_dir), store_config(str(tmp_path)))
    assert stored.computed == 0, "the fit at the chosen size reuses the search's frozen pass"


def test_the_users_image_size_wins(digits_dir: Path, tmp_path: Path) -> None:
    import graft

    advice = advise(digits_dir, image_size=64, cache_dir=str(tmp_path))
    assert advice.facts.size_given and advice.facts.size_probes == ()
    assert advice.image_size == 64 and "yours (--image-size), kept" in advice.lines()[2]
    model = graft.fit(
        digits_dir, image_size=64, dry_run=True, cache_dir=str(tmp_path), log=lambda _: None
    )
    assert model.data_config.image_size == 64 and model.info["advice"]["facts"]["size_given"]


def test_backbone_auto_ranks_the_bundled_candidates(digits_dir: Path, tmp_path: Path) -> None:
    import graft
    from graft.workflows.auto_backbone import AUTO_BACKBONES
    from graft.workflows.measure import rank

    lines: list[str] = []
    model = graft.fit(
        digits_dir, backbone="auto", image_size=64, dry_run=True, cache_dir=str(tmp_path),
        log=lines.append,
    )  # fmt: skip
    assert lines[0] == "--backbone auto: 3 bundled candidates ranked by logme:"
    assert all(any(name in line for line in lines[1:5]) for name in AUTO_BACKBONES)
    ranking = rank(digits_dir, backbones=AUTO_BACKBONES, image_size=64, cache_dir=str(tmp_path))
    assert ranking.best is not None and model.backbone.spec.name == ranking.best.backbone
    assert lines[5] == f"  → {ranking.best.backbone}"
    assert all(r.computed == 0 for r in ranking.rows), "the fit's ranking stored every candidate"


def test_an_explicit_strategy_also_gets_a_measured_size_for_small_images(
    digits_dir: Path, tmp_path: Path
) -> None:
    """Not only auto: 32 px digits with --strategy two_stage train at the measured size."""
    import graft

    lines: list[str] = []
    model = graft.fit(
        digits_dir, strategy="two_stage", dry_run=True, cache_dir=str(tmp_path), log=lines.append
    )
    advice = advise(digits_dir, cache_dir=str(tmp_path))
    assert model.data_config.image_size == advice.image_size < 224
    said = [x for x in lines if x.startswith("input size")]
    assert said and "images are 32 px" in said[0] and "linear probe" in said[0]
    given = graft.fit(
        digits_dir, strategy="two_stage", image_size=96, dry_run=True,
        cache_dir=str(tmp_path), log=lines.append,
    )  # fmt: skip
    assert given.data_config.image_size == 96, "the user's --image-size wins"
    random_lines: list[str] = []
    scratch = graft.fit(
        digits_dir, strategy="full", pretrained=False, dry_run=True,
        cache_dir=str(tmp_path), log=random_lines.append,
    )  # fmt: skip
    assert scratch.data_config.image_size == 224 and not any(
        x.startswith("input size") for x in random_lines
    ), "a random backbone keeps its size: a probe on random features says nothing"
