"""GraftModel: a backbone and a head; predict, evaluate, save and load.

An artifact is a folder with ``model.safetensors`` (every weight) and ``config.json``
(backbone spec, preprocessing, task, and the run record: configuration, plan, history, metrics). Loading never
unpickles, and rejects damaged or incompatible artifacts with a clear error. Saving is atomic:
the folder is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from graft import __version__
from graft.backbones import Backbone, BackboneSpec, DataConfig, from_spec
from graft.backbones.engines import choose_engine
from graft.backbones.text import token_dataset
from graft.data import Dataset, ImageDataset, build_transform
from graft.data import load as load_data
from graft.data.base import Samples
from graft.data.images import list_images
from graft.errors import ArtifactError, BackboneError, ConfigError, DataError
from graft.io import aside_dirs, atomic_dir, check_destination
from graft.metrics import confusion, per_class_report
from graft.model_card import render_card
from graft.model_check import check_format_version, check_model_config, offline, read_config_file
from graft.progress import beating
from graft.record import RunRecord
from graft.tasks.base import Task, TaskSpec, create_task
from graft.tasks.spec import align_targets

FORMAT = "graft-model"
FORMAT_VERSION = 2  # 2: a typed run record ("record") in place of the free "info" dict
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
TOKENIZER_DIR = "tokenizer"


class GraftModel(nn.Module):
    """A pretrained backbone with a new head.

    Shape:
        - Input: ``(batch, channels, height, width)`` preprocessed with ``data_config``.
        - Output: ``(batch, num_outputs)`` raw head outputs (logits or standardised values).
    """

    def __init__(
        self, backbone: Backbone, task: TaskSpec, *, data_config: DataConfig | None = None
    ):
        super().__init__()
        self.backbone = backbone
        self.task_spec = task
        self.task: Task = create_task(task)
        self.head = self.task.build_head(backbone.num_features)
        self.data_config = data_config or backbone.data_config
        self.info: dict[str, Any] = {}  # the run record as a run writes it; read `record`

    def forward(self, x: torch.Tensor, return_features: bool = False) -> Any:
        """Head outputs; with ``return_features`` also the backbone's pooled features."""
        features = self.backbone(x)
        outputs = self.head(features)
        return (outputs, features) if return_features else outputs

    def set_temperature(self, temperature: float) -> None:
        """Divide classification logits by ``temperature`` in every prediction (saved with it)."""
        import dataclasses

        if self.task_spec.kind != "classification" or not temperature > 0:
            raise ValueError(
                f"temperature: a positive number for a classification model, got {temperature} "
                f"for {self.task_spec.kind}"
            )
        self.task_spec = dataclasses.replace(self.task_spec, temperature=float(temperature))
        self.task = create_task(self.task_spec)

    # ---------------------------------------------------------------- inference
    @torch.inference_mode()
    def predict_outputs(
        self,
        samples: Samples | Sequence[str | Path],
        *,
        batch_size: int = 64,
        progress: bool = False,
        mc_samples: int = 0,
    ) -> np.ndarray:
        """Decoded outputs (class probabilities or values in original units), one row per file.

        With ``mc_samples > 0`` the result is the mean over that many MC-dropout passes; see
        :meth:`predict_distribution` for the spread.
        """
        mean, _ = self.predict_distribution(
            samples, batch_size=batch_size, progress=progress, mc_samples=mc_samples
        )
        return mean

    @torch.inference_mode()
    def predict_distribution(
        self,
        samples: Samples | Sequence[str | Path],
        *,
        batch_size: int = 64,
        progress: bool = False,
        mc_samples: int = 0,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean and standard deviation of decoded outputs over MC-dropout passes.

        MC dropout (Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016): dropout
        stays active at prediction (BatchNorm stays in inference mode) and each file is
        predicted ``mc_samples`` times. Without ``mc_samples`` the spread is None.

        The backbone runs through :func:`graft.backbones.engines.choose_engine`, the registry
        every frozen pass uses: when the pass is long enough to repay it, the fastest engine
        whose features match eager PyTorch on the first batch (``GRAFT_ENGINE=name`` forces
        one).
        """
        if not isinstance(samples, Samples):
            samples = self._as_samples(samples)
        loader = torch.utils.data.DataLoader(self.dataset_for(samples), batch_size=batch_size)
        device = next(self.parameters()).device
        self.eval()
        dropouts = self._enable_mc_dropout() if mc_samples > 0 else []
        means, stds = [], []
        batches = iter(_progress(loader, progress, "predict"))
        first = next(batches, None)
        try:
            if first is not None:
                # The backbone runs through the fastest equivalent engine (eager on a short
                # pass); dropout sits in the head, so one backbone pass suffices.
                with choose_engine(
                    self.backbone, first[0], input_kind=self.input_kind, files=len(samples.paths)
                ) as engine:
                    chained = itertools.chain([first], batches)
                    for x, _ in beating(chained, "predict", len(loader)):
                        feats = torch.from_numpy(engine.run(x)).to(device)
                        if not dropouts:
                            means.append(self._decoded(feats))
                            continue
                        draws = np.stack([self._decoded(feats) for _ in range(mc_samples)])
                        means.append(draws.mean(axis=0))
                        stds.append(draws.std(axis=0))
        finally:
            self.eval()
        width = self.task_spec.num_outputs
        mean = np.concatenate(means) if means else np.zeros((0, width))
        return mean, (np.concatenate(stds) if stds else None) if dropouts else None

    def _decoded(self, features: torch.Tensor) -> np.ndarray:
        return np.asarray(self.task.decode(self.head(features).float().cpu().numpy()))

    @torch.inference_mode()
    def decode_features(self, features: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Decoded outputs (as :meth:`predict_outputs`) from backbone features, e.g. stored ones.

        Shape:
            - Input: ``(n, backbone.num_features)``; output: ``(n, num_outputs)``.
        """
        device = next(self.parameters()).device
        self.eval()
        rows = [
            self._decoded(
                torch.from_numpy(np.ascontiguousarray(features[i : i + batch_size])).to(device)
            )
            for i in range(0, len(features), batch_size)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, self.task_spec.num_outputs))

    @property
    def input_kind(self) -> str:
        """``image`` or ``text``: what :meth:`predict` takes."""
        return self.backbone.input_kind

    def _as_samples(self, items: Sequence[str | Path]) -> Samples:
        zeros = np.zeros(len(items), dtype=np.int64)
        if self.input_kind == "text":
            texts = [str(t) for t in items]
            return Samples([Path(f"text {i + 1}") for i in range(len(texts))], zeros, texts)
        return Samples([Path(p) for p in items], zeros)

    def dataset_for(self, samples: Samples) -> Any:
        """A torch Dataset of ``samples`` as this model reads them (images or tokenized texts)."""
        if self.input_kind == "text":
            if samples.texts is None:
                raise DataError("this model reads texts; pass texts, not image files")
            backbone: Any = self.backbone
            return token_dataset(backbone, samples.texts, samples.targets)

        return ImageDataset(samples, build_transform(self.data_config, train=False))

    def _enable_mc_dropout(self) -> list[torch.nn.Module]:
        layers: list[torch.nn.Module] = [
            m for m in self.head.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0
        ]
        if not layers:
            raise ConfigError(
                "--mc-samples needs dropout in the head, and this model was trained without it; "
                "fit again with --dropout 0.2 (or another rate)"
            )
        for m in layers:
            m.train()
        return layers

    def predict(
        self,
        files: Iterable[str | Path],
        *,
        batch_size: int = 64,
        progress: bool = False,
        mc_samples: int = 0,
        top_k: int = 0,
    ) -> list[dict[str, Any]]:
        """Predict files: one record per file (``path``, ``prediction``, ``probability`` or values).

        A text model takes texts (``model.predict(["some text"])``), one record per text with
        ``text`` in place of ``path``. With ``mc_samples`` each record also has the spread
        (``*_std``) over MC-dropout passes; with ``top_k`` (classification) the ``k`` best
        classes and their probabilities (``top1``, ``top1_probability``, ``top2``, ...).
        """
        if self.input_kind == "text":
            texts = [files] if isinstance(files, str) else [str(t) for t in files]
            if not texts:
                raise DataError("no texts to predict; pass a list of strings")
            mean, std = self.predict_distribution(
                texts, batch_size=batch_size, progress=progress, mc_samples=mc_samples
            )
            rows = self._with_top_k(self.task.rows(mean, std), mean, top_k)
            return [{"text": t, **r} for t, r in zip(texts, rows, strict=True)]
        paths = _expand(files)
        mean, std = self.predict_distribution(
            paths, batch_size=batch_size, progress=progress, mc_samples=mc_samples
        )
        rows = self._with_top_k(self.task.rows(mean, std), mean, top_k)
        return [{"path": str(p), **r} for p, r in zip(paths, rows, strict=True)]

    def _with_top_k(self, rows: list[dict[str, Any]], mean: np.ndarray, k: int) -> list[Any]:
        if not k:
            return rows
        return [{**r, **t} for r, t in zip(rows, self._top_k(mean, k), strict=True)]

    def _top_k(self, proba: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The ``k`` most probable classes of each row, best first."""
        names = list(self.task_spec.class_names or [])
        if self.task_spec.kind != "classification" or not names:
            raise ConfigError(
                f"--top-k applies to classification; this model's task is {self.task_spec.kind}"
            )
        if k < 1:
            raise ConfigError(f"--top-k must be at least 1, got {k}")
        k = min(k, len(names))
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [
            {
                key: value
                for i, c in enumerate(row, start=1)
                for key, value in ((f"top{i}", names[c]), (f"top{i}_probability", float(p[c])))
            }
            for row, p in zip(order, proba, strict=True)
        ]

    def evaluate(
        self, data: Any, *, split: str | None = None, batch_size: int = 64, progress: bool = False
    ) -> dict[str, float]:
        """Metrics on a dataset (a path, a :class:`~graft.data.Dataset` or :class:`Samples`).

        A dataset's ``test`` split is used when it has one (else ``split`` or all files). The
        folder or table the model was trained on is split as it was in training, so its
        default is the held-out test split, never files the model trained on.
        """
        samples = self.samples_for(data, split=split)
        decoded = self.predict_outputs(samples, batch_size=batch_size, progress=progress)
        return self.task.metrics(samples.targets, decoded)

    def evaluation(
        self,
        data: Any,
        *,
        split: str | None = None,
        batch_size: int = 64,
        progress: bool = False,
        with_confusion: bool = False,
    ) -> dict[str, Any]:
        """What :meth:`evaluate` scores, and on what: the split, N, metrics and per-class figures.

        Returns:
            ``split`` (``test``, the given split, or ``all``), ``n``, ``metrics``; for
            classification also ``per_class`` (precision, recall, F1, support, ROC AUC per
            class) and, with ``with_confusion``, ``confusion`` (rows: true, columns: predicted).
            Regression metrics hold per-target figures (``mae_<target>``...) for several targets.
        """
        name, samples = self._select(data, split)
        decoded = self.predict_outputs(samples, batch_size=batch_size, progress=progress)
        report: dict[str, Any] = {
            "split": name,
            "n": len(samples.paths),
            "metrics": self.task.metrics(samples.targets, decoded),
        }
        if self.task_spec.kind == "classification" and self.task_spec.class_names:
            names = list(self.task_spec.class_names)
            report["per_class"] = per_class_report(samples.targets, decoded, names)
            if with_confusion:
                predicted = np.asarray(decoded).argmax(axis=1)
                report["confusion"] = confusion(samples.targets, predicted, len(names)).tolist()
        return report

    def samples_for(self, data: Any, *, split: str | None = None) -> Samples:
        """Samples of ``data`` with targets in this model's encoding (class order)."""
        return self._select(data, split)[1]

    def _select(self, data: Any, split: str | None) -> tuple[str, Samples]:
        """The split scored (its name: ``test``, ``split``, ``all`` or ``samples``) and its samples."""
        if isinstance(data, Samples):
            return "samples", data
        if not isinstance(data, Dataset):
            options = {k: v for k, v in self.record.data_options.items() if v is not None}
            options.update(self._training_split(data))
            data = load_data(data, task=self.task_spec.kind, **options)
        parts = data.splits()
        if split is not None:
            if split not in parts:
                raise DataError(f"no {split!r} split in {data.source}; have {', '.join(parts)}")
            name, chosen = split, [parts[split]]
        elif data.test is not None and len(data.test):
            name, chosen = "test", [data.test]
        else:
            name, chosen = "all", [s for s in parts.values() if len(s)]
        merged = Samples.concat(chosen)
        return name, self._remap_classes(merged, data.class_names, data)

    def _training_split(self, source: str | Path) -> dict[str, Any]:
        """The split settings this model was trained with, when ``source`` is its training data.

        Evaluating on the training folder then scores the held-out test split it never saw;
        other data is evaluated whole (no split carved out).
        """
        recorded = self.record.split
        trained_on = self.record.data.get("source")
        if recorded and trained_on and Path(trained_on).resolve() == Path(source).resolve():
            return dict(recorded)
        return {"val_fraction": 0.0, "test_fraction": 0.0}

    def _remap_classes(self, samples: Samples, names: list[str] | None, data: Any) -> Samples:
        """Targets in this model's class, label and subtask order (see ``align_targets``)."""
        subtasks = getattr(data, "subtasks", None)
        targets = align_targets(self.task_spec, samples.targets, names, subtasks)
        return samples if targets is samples.targets else samples.with_targets(targets)

    @property
    def record(self) -> RunRecord:
        """The run record (configuration, plan, advice, history, metrics, data, extensions)."""
        return RunRecord.from_info(self.info)

    # ---------------------------------------------------------------- persistence
    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "graft_version": __version__,
            "backbone": self.backbone.spec.to_dict(),
            "data_config": self.data_config.to_dict(),
            "task": self.task_spec.to_dict(),
            "record": self.record.to_dict(),
        }

    def save(self, directory: str | Path) -> Path:
        """Write the artifact atomically; an existing artifact there is replaced only on success."""
        from safetensors import SafetensorError
        from safetensors.torch import save_model

        target = Path(directory)
        if (
            target.exists()
            and not is_graft_model(target)
            and (not target.is_dir() or any(target.iterdir()))
        ):
            raise ArtifactError(
                f"{target}: exists and is not a graft model; choose another --out folder"
            )
        try:
            with atomic_dir(target) as tmp:
                save_model(self, str(tmp / WEIGHTS_FILE))
                text = json.dumps(self.config(), indent=2, default=json_default)
                (tmp / CONFIG_FILE).write_text(text + "\n")
                card = render_card(
                    self.record, self.backbone.spec, self.data_config, self.task_spec
                )
                (tmp / CARD_FILE).write_text(card)
                save_tokenizer = getattr(self.backbone, "save_tokenizer", None)
                if save_tokenizer is not None:  # text: the tokenizer travels with the weights
                    save_tokenizer(tmp / TOKENIZER_DIR)
        except (OSError, SafetensorError) as e:  # a full or read-only disk: old model kept
            kept = "the previous model there is untouched" if target.exists() else "nothing saved"
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ArtifactError(
                f"{target}: cannot save the model ({reason}); {kept}; free space or "
                "choose another --out"
            ) from None
        return target


def is_graft_model(folder: Path) -> bool:
    """True for a folder graft saved: its ``config.json`` names the graft-model format."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def check_out(out: str | Path) -> Path:
    """Refuse ``--out`` before any work unless graft may write a model there (see io)."""
    return check_destination(out, flag="--out", is_ours=is_graft_model, what="a graft model")


def load(directory: str | Path) -> GraftModel:
    """Load a saved model. Never unpickles; a damaged or incompatible artifact is an ArtifactError.

    The folder is treated as untrusted data: every config field is checked before anything is
    built (:mod:`graft.model_check`), no model hub is contacted, and no file outside the folder
    is opened.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    path = Path(directory)
    config = check_model_config(_read_config(path), path / CONFIG_FILE)
    try:  # the backbone's source (graft.backbones.SOURCES) rebuilds its architecture
        with offline():
            backbone = from_spec(BackboneSpec.from_dict(config["backbone"]), load_weights=False)
        model = GraftModel(
            backbone,
            TaskSpec.from_dict(config["task"]),
            data_config=DataConfig.from_dict(config["data_config"]),
        )
    except BackboneError as e:
        raise ArtifactError(f"{path / CONFIG_FILE}: its backbone cannot be rebuilt ({e})") from e
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"{path / CONFIG_FILE}: incompatible model config ({e})") from e
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"{weights}: missing; the artifact is incomplete, save the model again")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise ArtifactError(f"{weights}: damaged or does not match the config ({e})") from e
    if missing or unexpected:
        raise ArtifactError(
            f"{weights}: weights do not match the config (missing {list(missing)[:3]}, "
            f"unexpected {list(unexpected)[:3]}); was it written by another model?"
        )
    model.info = _read_record(config, path / CONFIG_FILE).to_info()
    if hasattr(backbone, "load_tokenizer"):
        _load_tokenizer(backbone, path / TOKENIZER_DIR)
    model.eval()
    return model


def _load_tokenizer(backbone: Any, folder: Path) -> None:
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: missing; a text model needs its tokenizer, save it again")
    try:
        backbone.load_tokenizer(folder)
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{folder}: damaged tokenizer files ({e}); save the model again") from e


def _read_record(config: dict[str, Any], where: Path) -> RunRecord:
    """The run record; an artifact of format 1 (graft 0.1.0) kept a free ``info`` dict instead."""
    try:
        if "record" in config:
            if not isinstance(config["record"], dict):
                raise TypeError(f"an object, not {type(config['record']).__name__}")
            return RunRecord.from_dict(config["record"], where=str(where))
        return RunRecord.from_info(config.get("info", {}))
    except (TypeError, ValueError, AttributeError) as e:
        if isinstance(e, ArtifactError):
            raise
        raise ArtifactError(f"{where}: field record: not a run record graft writes ({e})") from e


def _read_config(path: Path) -> dict[str, Any]:
    cfg = path / CONFIG_FILE
    if not path.is_dir():
        kept = aside_dirs(path)
        where = f"; an interrupted save left the previous model in {kept[-1]}" if kept else ""
        raise ArtifactError(f"{path}: not a saved graft model (no such folder){where}")
    if not cfg.exists():
        raise ArtifactError(f"{cfg}: missing; {path} is not a saved graft model")
    config = read_config_file(cfg)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ArtifactError(f"{cfg}: not a graft model config (format is not {FORMAT!r})")
    version = check_format_version(config, cfg, FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"{cfg}: format version {version} is newer than this graft understands "
            f"({FORMAT_VERSION}); upgrade graft-ml (written by graft {config.get('graft_version')})"
        )
    return config


def _expand(files: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders listed as fit lists them (hidden, ``__MACOSX`` and folders skipped)."""
    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            out += list_images(p)
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    if not out:
        raise DataError("no image files to predict; pass image files or folders holding images")
    return out


def _progress(it: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False, disable=None)  # None: off when not a terminal


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
