"""The head fitted to convergence on features: reference values against scikit-learn."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from torch import nn

from graft.tasks.base import Head
from graft.tasks.linear_start import fit_linear_head, linear_layers


class _Scaled:
    """Centre, then divide by one common scale: the features' root-mean-square deviation."""

    def __init__(self, x: np.ndarray) -> None:
        self.mean = x.mean(axis=0)
        self.scale = float(np.sqrt(x.var(axis=0).mean()))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale


def _digits(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return x[:n].astype(np.float32), y[:n]


def test_classification_matches_scikit_learn_logistic_regression() -> None:
    """The objective is LogisticRegression(C=1) on features centred and divided by their
    root-mean-square deviation: the same probabilities."""
    x, y = _digits()
    head = Head(x.shape[1], 10, dropout=0.2)
    fitted = fit_linear_head(head, F.cross_entropy, torch.as_tensor(x), torch.as_tensor(y))
    assert fitted is not None and fitted.iterations > 1
    scaler = _Scaled(x)
    ref = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(scaler.transform(x), y)
    test_x, _ = load_digits(return_X_y=True)
    test_x = test_x[1000:1200].astype(np.float32)
    assert head.training, "the head's mode is restored"
    head.eval()
    with torch.no_grad():
        ours = torch.softmax(head(torch.as_tensor(test_x)), dim=1).numpy()
    theirs = ref.predict_proba(scaler.transform(test_x))
    # The same minimum of the same objective (mean cross-entropy + |W|² / (2n) on the scaled
    # features), to float32 precision: L-BFGS in float32 stops at a gradient of 1e-6, so the
    # probabilities agree to a few thousandths (2.4e-3 on one processor, 1.3e-3 on another).
    assert _objective(head, x, y, scaler.scale) <= _sk_objective(ref, scaler, x, y) + 1e-5
    assert np.abs(ours - theirs).max() < 5e-3
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def _objective(head: nn.Module, x: np.ndarray, y: np.ndarray, scale: float) -> float:
    """The fitted head's objective in float64: its weights on scaled features are W · scale."""
    (layer,) = linear_layers(head, x.shape[1]) or []
    w = layer.weight.detach().double().numpy()
    b = layer.bias.detach().double().numpy()
    logits = x.astype(np.float64) @ w.T + b
    return _cross_entropy(logits, y) + float(((w * scale) ** 2).sum()) / (2 * len(x))


def _sk_objective(ref: LogisticRegression, scaler: _Scaled, x: np.ndarray, y: np.ndarray) -> float:
    logits = scaler.transform(x.astype(np.float64)) @ ref.coef_.T + ref.intercept_
    return _cross_entropy(logits, y) + float((ref.coef_**2).sum()) / (2 * len(x))


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def test_regression_matches_ridge_on_standardised_features() -> None:
    """Mean squared error + |w|² / (2n) is ridge with alpha 0.5 on the scaled features."""
    x, y = _digits()
    target = (x[:, 20] * 0.3 + x[:, 33] - x[:, 45] * 0.5 + y).astype(np.float32)
    target = (target - target.mean()) / target.std()
    head = Head(x.shape[1], 1)
    fitted = fit_linear_head(
        head, F.mse_loss, torch.as_tensor(x), torch.as_tensor(target).reshape(-1, 1)
    )
    assert fitted is not None
    scaler = _Scaled(x)
    ref = Ridge(alpha=0.5).fit(scaler.transform(x), target)
    with torch.no_grad():
        ours = head(torch.as_tensor(x)).numpy().ravel()
    np.testing.assert_allclose(ours, ref.predict(scaler.transform(x)), atol=5e-3)


def test_multilabel_fits_with_binary_cross_entropy() -> None:
    x, y = _digits()
    labels = np.stack([y % 2 == 0, y > 4, y == 7], axis=1).astype(np.float32)
    head = Head(x.shape[1], 3)
    loss = F.binary_cross_entropy_with_logits
    with torch.no_grad():
        start = float(loss(head(torch.as_tensor(x)), torch.as_tensor(labels)))
    fitted = fit_linear_head(head, loss, torch.as_tensor(x), torch.as_tensor(labels))
    assert fitted is not None and fitted.loss < min(start, 0.2)


def test_heads_it_cannot_solve_are_left_untouched() -> None:
    x, y = _digits(50)
    mlp = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    assert linear_layers(mlp, 64) is None
    before = [p.detach().clone() for p in mlp.parameters()]
    assert fit_linear_head(mlp, F.cross_entropy, torch.as_tensor(x), torch.as_tensor(y)) is None
    assert all(torch.equal(a, b) for a, b in zip(before, mlp.parameters(), strict=True))

    head = Head(64, 10)
    bad = torch.as_tensor(x).clone()
    bad[3, 5] = float("nan")
    kept = [p.detach().clone() for p in head.parameters()]
    assert fit_linear_head(head, F.cross_entropy, bad, torch.as_tensor(y)) is None
    assert all(torch.equal(a, b) for a, b in zip(kept, head.parameters(), strict=True))
    for p in head.parameters():
        p.requires_grad_(False)
    assert fit_linear_head(head, F.cross_entropy, torch.as_tensor(x), torch.as_tensor(y)) is None


def test_class_weights_enter_the_objective() -> None:
    """The task's loss is the objective: class weights change the fitted head."""
    x, y = torch.as_tensor(_digits(200)[0]), torch.as_tensor(_digits(200)[1])
    weights = torch.linspace(0.2, 5.0, 10)
    plain, weighted = Head(64, 10), Head(64, 10)
    a = fit_linear_head(plain, F.cross_entropy, x, y)
    b = fit_linear_head(weighted, lambda o, t: F.cross_entropy(o, t, weight=weights), x, y)
    assert a is not None and b is not None
    with torch.no_grad():
        assert abs(float(F.cross_entropy(plain(x), y)) - a.loss) < 1e-5
        assert not torch.allclose(plain.fc.weight, weighted.fc.weight, atol=1e-3)
