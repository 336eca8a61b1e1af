"""Time the transferability scores on backbone-sized features; run by hand, prints a table.

    python bench/scores.py [--n 10000] [--d 1280] [--classes 10] [--repeat 3]

The features are random but shaped like a backbone's pooled output: a class signal and a
low-rank latent structure pushed through a ReLU, plus noise. Two references are timed in the
same run: LogME recomputing the decomposition for every class (the naive per-class form) and
a scikit-learn logistic-regression linear probe (what you would do instead of a score).
Thread count follows OMP_NUM_THREADS / the BLAS default; say which when quoting numbers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from graft.measure.scores import hscore, leep, logme, nce
from graft.measure.scores.logme import _fixed_point, _log_evidence, _spectrum


def make_features(
    n: int, d: int, classes: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structured features ``(n, d)`` float32, labels ``(n,)`` and source probs ``(n, 1000)``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    latent = 2.0 * rng.normal(size=(classes, 64))[labels] + rng.normal(size=(n, 64))
    mix = rng.normal(size=(64, d)) / 8.0
    feats = np.maximum(latent @ mix + 0.5 * rng.normal(size=(n, d)), 0.0).astype(np.float32)
    logits = latent @ rng.normal(size=(64, 1000)) / 4.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return feats, labels, probs / probs.sum(axis=1, keepdims=True)


def logme_per_class(features: np.ndarray, labels: np.ndarray) -> float:
    """Naive reference: one decomposition per class instead of one shared by all classes."""
    f = features.astype(np.float64)
    f /= np.sqrt((f**2).sum() / len(f))
    n, d = f.shape
    values = []
    for c in np.unique(labels):
        y = (labels == c).astype(np.float64)[:, None]
        sigma, x2, res_x2 = _spectrum(f, y)
        alpha, beta = _fixed_point(sigma, x2, res_x2, n)
        values.append(float(_log_evidence(alpha, beta, sigma, x2, res_x2, n, d)[0]) / n)
    return float(np.mean(values))


def linear_probe(features: np.ndarray, labels: np.ndarray) -> float:
    """What you would do instead: fit a logistic-regression probe (training accuracy)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(features)
    return float(LogisticRegression(max_iter=100).fit(x, labels).score(x, labels))


def timed(fn: Callable[[], float], repeat: int) -> tuple[float, float, float]:
    """Best wall time and best process CPU time (all threads) over ``repeat`` runs, and the value.

    On a shared machine the wall time includes waiting for a core; the CPU time does not.
    """
    best, cpu, value = float("inf"), float("inf"), float("nan")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        value = fn()
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return best, cpu, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=1280)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    f, y, p = make_features(args.n, args.d, args.classes)
    rows: list[tuple[str, Callable[[], float]]] = [
        ("logme", lambda: logme(f, y)),
        ("hscore", lambda: hscore(f, y)),
        ("hscore_shrinkage", lambda: hscore(f, y, shrinkage=True)),
        ("nce", lambda: nce(p.argmax(axis=1), y)),
        ("leep", lambda: leep(p, y)),
        ("ref: logme per-class decomposition", lambda: logme_per_class(f, y)),
        ("ref: logistic-regression probe", lambda: linear_probe(f, y)),
    ]
    print(f"features {args.n} x {args.d}, {args.classes} classes, best of {args.repeat}")
    print(f"{'score':36s} {'seconds':>9s} {'cpu s':>9s} {'value':>12s}")
    times: dict[str, float] = {}
    for name, fn in rows:
        seconds, cpu, value = timed(fn, 1 if name.startswith("ref: logistic") else args.repeat)
        times[name] = seconds
        print(f"{name:36s} {seconds:9.3f} {cpu:9.3f} {value:12.4f}", flush=True)
    fast = times["logme"]
    print(f"logme speed-up vs per-class decomposition: {times[rows[5][0]] / fast:.1f}x")
    print(f"logme speed-up vs logistic-regression probe: {times[rows[6][0]] / fast:.1f}x")


if __name__ == "__main__":
    main()
