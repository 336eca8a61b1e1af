"""Domain adaptation inside ``graft.fit``: labeled source data, unlabeled target images.

:func:`start_adaptation` checks the request and loads the target images (before a dry run
returns); :meth:`Adaptation.before_training` runs rotation pre-training or adds the alignment
loss term, and the target report; :meth:`Adaptation.finish` records what was done in
``model.info["adaptation"]``. A labeled target set (``target_eval``) is only ever evaluated:
its accuracy is reported per epoch and at the end, never used to train or to select weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graft.errors import ConfigError
from graft.training.extensions import ExtensionBase

if TYPE_CHECKING:
    import torch

    from graft.adapt.base import Adapter
    from graft.adapt.rotation import RotationTerm
    from graft.adapt.term import AlignmentTerm
    from graft.data.base import Dataset, Samples
    from graft.model import GraftModel
    from graft.strategies.base import Plan, Stage
    from graft.training.loop import TrainConfig

DEFAULT_METHOD = "dann"
#: Options of rotation pre-training (keywords of :func:`~graft.adapt.pretrain_rotation`).
ROTATION_OPTIONS = ("epochs", "lr", "weight_decay")


@dataclass(eq=False)
class Adaptation(ExtensionBase):
    """A checked adaptation request for one fit, as the loop's extension named ``adapt``.

    It holds the method, its target images and its report set; :meth:`prepare` runs rotation
    pre-training or builds the alignment term that :meth:`loss` delegates to.
    """

    method: str | None
    adapter: Adapter | None
    options: dict[str, Any]
    unlabeled: str
    paths: list[Path]
    active_stages: list[str]
    target_eval: Samples | None = None
    log: Callable[[str], None] = print
    done: dict[str, Any] = field(default_factory=dict)
    model: GraftModel | None = None

    name = "adapt"
    term: AlignmentTerm | RotationTerm | None = None

    def prepare(self, model: GraftModel, cfg: TrainConfig) -> None:
        """Before training: build the rotation (pretext stage) or alignment term."""
        if self.adapter is None:
            return
        if self.adapter.stage == "pretrain":
            from graft.adapt.rotation import RotationPretext, RotationTerm

            assert isinstance(self.adapter, RotationPretext)
            self.term = RotationTerm(
                self.adapter, self.paths, batch_size=cfg.batch_size, augment=cfg.augment,
                num_workers=cfg.num_workers, log=self.log,
                weight_decay=float(self.options.get("weight_decay", 0.0)),
            )  # fmt: skip
            return
        from graft.adapt.term import AlignmentTerm

        self.term = AlignmentTerm(
            self.adapter,
            self.paths,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            augment=cfg.augment,
            num_workers=cfg.num_workers,
        )

    def pretext_stages(self, plan: Plan) -> Plan:
        """The plan with rotation pre-training prepended as a ``pretext`` stage (else as is)."""
        if self.adapter is None or self.adapter.stage != "pretrain":
            return plan
        from dataclasses import replace

        from graft.strategies.base import Stage

        rotation = Stage(
            name="rotation", kind="pretext", epochs=int(self.options.get("epochs", 1)),
            lr=float(self.options.get("lr", 1e-4)),
            multipliers=(*(1.0 for _ in plan.groups[:-1]), 0.0), bn="train", patience=None,
        )  # fmt: skip
        return replace(plan, stages=(rotation, *plan.stages))

    def pretext_loader(self, model: GraftModel, generator: Any) -> Any:
        """The pretext stage's batches (rotation: the unlabeled target images)."""
        return self.term.pretext_loader(model, generator)  # type: ignore[union-attr]

    def pretext_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The pretext stage's model inputs from a batch (rotation: four rotations)."""
        return self.term.pretext_inputs(x)  # type: ignore[union-attr]

    def setup(self, model: GraftModel, stage: Stage, accelerator: Any) -> bool:
        """Active in a stage that runs the backbone when an alignment method was asked for."""
        return self.term is not None and self.term.setup(model, stage, accelerator)

    def loss(
        self,
        model: GraftModel,
        x: torch.Tensor,
        features: torch.Tensor,
        outputs: torch.Tensor,
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The alignment loss of this batch against a batch of target images."""
        assert self.term is not None, "setup answered False: the loop adds no loss here"
        return self.term.loss(model, x, features, outputs, progress)

    def on_epoch(self, row: dict[str, Any]) -> None:
        """Log the alignment metrics, then add the target report's ``target_*`` metrics."""
        if row.get("kind") == "pretext":
            if self.term is not None:
                self.term.on_epoch(row)
            return
        self.report_alignment(row)
        if self.target_eval is not None and self.model is not None:
            TargetReport(self.model, self.target_eval, self.log)(row)

    def state_dict(self) -> dict[str, Any]:
        """The adapter's weights (DANN's discriminator) for checkpoints."""
        return self.term.state_dict() if self.term is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.term is not None:
            self.term.load_state_dict(state)

    def parameter_groups(self, stage: Stage) -> list[dict[str, Any]]:
        return self.term.parameter_groups(stage) if self.term is not None else []

    def report_alignment(self, row: dict[str, Any]) -> None:
        """Log an epoch's alignment metrics (DANN: domain accuracy), where the term ran."""
        prefix = "train_adapt_"
        shown = [f"{k[len(prefix) :]} {v:.4f}" for k, v in row.items() if k.startswith(prefix)]
        if shown:
            self.log(f"  {self.method}: {'  '.join(shown)}")

    def finish(self, model: GraftModel, dataset: Dataset, cfg: TrainConfig) -> dict[str, Any]:
        """Store what was done in ``model.info["adaptation"]`` (and the final target metrics)."""
        del dataset, cfg
        if self.term is not None and hasattr(self.term, "result"):
            self.done["rotation"] = self.term.result()
        info: dict[str, Any] = {
            "method": self.method,
            "options": self.options,
            "unlabeled": self.unlabeled,
            "n_unlabeled": len(self.paths),
            "active_stages": self.active_stages,
            **self.done,
        }
        if self.target_eval is not None:
            from graft.metrics import format_metrics

            metrics = model.evaluate(self.target_eval)
            info["target_eval"] = {"n": len(self.target_eval), "metrics": metrics}
            self.log("target metrics (labels used only to report):\n" + format_metrics(metrics))
        model.info["adaptation"] = info
        return info


class TargetReport:
    """A per-epoch callback: the labeled target set's metrics, added to the row as ``target_*``.

    Only reads the model (in inference mode); the loop re-seeds every epoch, so a run with the
    report trains exactly like a run without it.
    """

    def __init__(self, model: GraftModel, samples: Samples, log: Callable[[str], None]) -> None:
        self.model, self.samples, self.log = model, samples, log

    def __call__(self, row: dict[str, Any]) -> None:
        metrics = self.model.evaluate(self.samples)
        row.update({f"target_{k}": v for k, v in metrics.items()})
        shown = "  ".join(f"{k} {v:.4f}" for k, v in list(metrics.items())[:2])
        self.log(f"  target (report only): {shown}")


def start_adaptation(
    model: GraftModel,
    plan: Plan,
    cfg: TrainConfig,
    *,
    unlabeled: str | Path | None,
    adapt: str | None,
    adapt_options: dict[str, Any] | None,
    target_eval: str | Path | None,
    log: Callable[[str], None] = print,
) -> Adaptation | None:
    """Check an adaptation request against the plan and load its target images.

    Returns None when nothing is asked; with ``target_eval`` alone, only the report runs.

    Raises:
        ConfigError: no target images, an unknown method or option, or a plan in which an
            alignment method would never run (every stage keeps the backbone frozen).
    """
    from graft.adapt.base import ADAPTERS, create_adapter
    from graft.data.unlabeled import load_unlabeled

    if unlabeled is None and adapt is None:
        return None if target_eval is None else _report_only(model, target_eval, log)
    method, options = _method(unlabeled, adapt), dict(adapt_options or {})
    assert unlabeled is not None
    if ADAPTERS.get(method).stage == "pretrain":
        adapter = create_adapter(method, model.backbone.num_features)
        _check_rotation_options(options)
        active = ["rotation pre-training (before every stage)"]
    else:
        adapter = create_adapter(method, model.backbone.num_features, **options)
        active = _active_stages(plan, method)
    paths = load_unlabeled(unlabeled)
    report = None if target_eval is None else model.samples_for(target_eval)
    log(
        f"adaptation: {method} with {len(paths)} unlabeled target images from {unlabeled}; "
        f"active in: {', '.join(active)}"
        + (f"; {len(report)} labeled target images only to report" if report is not None else "")
    )
    return Adaptation(
        method, adapter, adapter.options() | options, str(unlabeled), paths, active, report, log,
        model=model,
    )  # fmt: skip


def _report_only(
    model: GraftModel, target_eval: str | Path, log: Callable[[str], None]
) -> Adaptation:
    report = model.samples_for(target_eval)
    log(f"target report: {len(report)} labeled target images, used only to report")
    return Adaptation(None, None, {}, "", [], [], report, log, model=model)


def _method(unlabeled: str | Path | None, adapt: str | None) -> str:
    from graft.adapt.base import ADAPTERS

    if unlabeled is None:
        raise ConfigError(
            f"adapt={adapt!r} needs unlabeled target images: pass unlabeled=FOLDER_OR_TABLE "
            "(--unlabeled, or `graft adapt SOURCE TARGET`)"
        )
    return ADAPTERS.normalize(adapt or DEFAULT_METHOD)


def _check_rotation_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(ROTATION_OPTIONS))
    if unknown:
        raise ConfigError(
            f"adapter 'rotation' has no option {', '.join(unknown)}; "
            f"its options: {', '.join(ROTATION_OPTIONS)}"
        )


def _active_stages(plan: Plan, method: str) -> list[str]:
    """Stages that train the backbone: the only ones where feature alignment can act."""
    active = [s.name for s in plan.stages if s.epochs > 0 and not s.backbone_frozen]
    if not active:
        auto = any("strategy auto" in note for note in plan.notes)
        raise ConfigError(
            f"adapt={method!r} aligns backbone features, but strategy {plan.strategy!r}"
            f"{' (chosen by --strategy auto for this data)' if auto else ''} keeps the backbone "
            "frozen in every stage, so adaptation would do nothing; pass a strategy that "
            "fine-tunes it (--strategy two_stage, fine_tune_top, full or progressive) or "
            "adapt='rotation'"
        )
    return active
