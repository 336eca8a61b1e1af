"""An alignment method in the loop: seeded, cycled, sharded target batches; its parameters train."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import graft
from graft.adapt import create_adapter
from graft.adapt.targets import TargetBatches
from graft.data.unlabeled import load_unlabeled
from graft.errors import ConfigError
from graft.model import GraftModel
from graft.strategies.base import Stage
from graft.tasks import Classification
from graft.testing import tiny_backbone
from graft.training.extensions import extension_groups
from graft.training.loop import TrainConfig

STAGE = Stage("tune", epochs=2, lr=1e-3, multipliers=(1.0, 0.5))
QUIET: dict[str, Any] = {"progress": False, "log": lambda s: None}


def _term(
    paths: list[Path], *, rank: int = 0, world: int = 1, batch_size: int = 8
) -> TargetBatches:
    model = GraftModel(tiny_backbone(image_size=32), Classification.spec_for(["a", "b"]))
    term = create_adapter("coral", 256).attach(paths, batch_size=batch_size, seed=3, augment=False)
    accelerator = SimpleNamespace(
        device=torch.device("cpu"), process_index=rank, num_processes=world
    )
    term.setup(model, STAGE, accelerator)
    assert term.targets is not None
    return term.targets


def test_target_batches_are_seeded_per_epoch_and_cycled(flat_target: Path) -> None:
    paths = load_unlabeled(flat_target)
    assert len(paths) == 40
    a, b = _term(paths), _term(paths)
    first = [a.next(0.1) for _ in range(7)]  # 5 batches of 8 per pass, then a new pass
    again = [b.next(0.1) for _ in range(7)]
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert all(x.shape == (8, 3, 32, 32) for x in first)
    # One pass shows every target image exactly once.
    every = torch.stack([a.dataset[i][0] for i in range(40)])
    seen = torch.cat(first[:5])
    assert torch.equal(every.sum((1, 2, 3)).sort().values, seen.sum((1, 2, 3)).sort().values)
    assert not torch.equal(first[5], first[0]), "the second pass is reshuffled"
    assert not torch.equal(a.next(0.5), first[0]), "a new epoch, a new order"


def test_each_process_takes_its_share_of_the_target_batch(flat_target: Path) -> None:
    paths = load_unlabeled(flat_target)
    full = _term(paths).next(0.0)
    halves = [_term(paths, rank=r, world=2).next(0.0) for r in (0, 1)]
    assert torch.equal(halves[0], full[0::2]) and torch.equal(halves[1], full[1::2])


def test_only_adapters_with_parameters_add_optimizer_groups() -> None:
    dann = create_adapter("dann", 8, hidden=4).attach([Path("a"), Path("b")])
    coral = create_adapter("coral", 8).attach([Path("a"), Path("b")])
    plain = SimpleNamespace(name="plain")  # a term without parameters of its own
    groups = extension_groups(
        [dann, coral, plain], STAGE, TrainConfig(weight_decay=0.01).weight_decay
    )
    assert len(groups) == 1
    assert groups[0]["lr"] == pytest.approx(5e-4), "the head's rate"
    assert groups[0]["weight_decay"] == 0.01
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in dann.parameters()}


def test_pretraining_adapters_and_tiny_targets_are_refused() -> None:
    with pytest.raises(ConfigError, match="pretrain step"):
        create_adapter("rotation", 8).align(torch.zeros(2, 8), torch.zeros(2, 8))
    with pytest.raises(ConfigError, match="at least 2 target images"):
        create_adapter("mmd", 8).attach([Path("a")])


def test_dann_trains_its_discriminator_while_the_coefficient_warms_up(
    digits_dir: Path, flat_target: Path
) -> None:
    adapter = create_adapter("dann", 256, hidden=32)
    before = copy.deepcopy(adapter.state_dict())
    term = adapter.attach(load_unlabeled(flat_target), batch_size=32)
    rows: list[dict[str, Any]] = []
    graft.fit(
        digits_dir, backbone=tiny_backbone(image_size=32), strategy="full", epochs=2,
        batch_size=32, extensions=[term], callbacks=[rows.append], **QUIET,
    )  # fmt: skip
    after = adapter.state_dict()
    assert all(not torch.equal(before[k], after[k].cpu()) for k in before), "every weight moved"
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(0.0 <= r["train_adapt_domain_acc"] <= 1.0 for r in rows)
    assert rows[0]["train_adapt_grl_coeff"] < rows[1]["train_adapt_grl_coeff"] <= 1.0
