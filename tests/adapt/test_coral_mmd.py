"""CORAL and MMD: reference values from explicit formulas; 0 for the same data, larger when shifted."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graft.adapt import coral_loss, mmd_loss
from graft.errors import ConfigError


def _sample(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * scale + shift


def test_coral_matches_numpy_formula():
    s, t = _sample(20, 5, 0), _sample(13, 5, 1, scale=2.0)
    cs, ct = np.cov(s.numpy(), rowvar=False), np.cov(t.numpy(), rowvar=False)
    expected = ((cs - ct) ** 2).sum() / (4 * 5**2)
    assert coral_loss(s, t).item() == pytest.approx(expected, rel=1e-5)


def test_coral_zero_for_same_data_and_grows_with_scale():
    s = _sample(200, 6, 0)
    assert coral_loss(s, s).item() == 0.0
    same = coral_loss(s, _sample(200, 6, 1)).item()
    wider = coral_loss(s, _sample(200, 6, 1, scale=2.0)).item()
    widest = coral_loss(s, _sample(200, 6, 1, scale=3.0)).item()
    assert same < 0.1 * wider < 0.1 * widest
    # A pure mean shift leaves the covariances, and so CORAL, unchanged.
    assert coral_loss(s, s + 5.0).item() == pytest.approx(0.0, abs=1e-6)


def _explicit_mmd(s: torch.Tensor, t: torch.Tensor, mul: float, num: int) -> float:
    x = torch.cat([s, t]).double()
    n = len(x)
    sq = [[float(((x[i] - x[j]) ** 2).sum()) for j in range(n)] for i in range(n)]
    sigma2 = sum(map(sum, sq)) / (n * n - n)
    widths = [sigma2 * mul ** (i - num // 2) for i in range(num)]

    def k(i: int, j: int) -> float:
        return sum(math.exp(-sq[i][j] / w) for w in widths)

    ns, nt = len(s), len(t)
    kss = sum(k(i, j) for i in range(ns) for j in range(ns)) / ns**2
    ktt = sum(k(i, j) for i in range(ns, n) for j in range(ns, n)) / nt**2
    kst = sum(k(i, j) for i in range(ns) for j in range(ns, n)) / (ns * nt)
    return kss + ktt - 2 * kst


@pytest.mark.parametrize(("mul", "num"), [(2.0, 5), (1.5, 3), (2.0, 1)])
def test_mmd_matches_explicit_formula(mul, num):
    s, t = _sample(7, 3, 0), _sample(5, 3, 1, shift=0.5)
    expected = _explicit_mmd(s, t, mul, num)
    assert mmd_loss(s, t, kernel_mul=mul, kernel_num=num).item() == pytest.approx(
        expected, rel=1e-4
    )


def test_linear_mmd_matches_explicit_pairs():
    s, t = _sample(6, 3, 0), _sample(7, 3, 1, shift=1.0)
    s1, s2, t1, t2 = s[0:6:2], s[1:6:2], t[0:6:2], t[1:6:2]
    pairs = [(s1, s2), (t1, t2), (s1, t2), (s2, t1)]
    sq = [((a - b) ** 2).sum(1) for a, b in pairs]
    sigma2 = torch.cat(sq).mean()
    widths = [sigma2 * 2.0 ** (i - 2) for i in range(5)]
    k = [sum(torch.exp(-d / w) for w in widths) for d in sq]
    expected = (k[0] + k[1] - k[2] - k[3]).mean()
    assert mmd_loss(s, t, estimator="linear").item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("estimator", ["biased", "linear"])
def test_mmd_small_for_same_distribution_larger_when_shifted(estimator):
    s = _sample(256, 8, 0)
    if estimator == "biased":
        assert mmd_loss(s, s).item() == pytest.approx(0.0, abs=1e-5)
    same = mmd_loss(s, _sample(256, 8, 1), estimator=estimator).item()
    near = mmd_loss(s, _sample(256, 8, 1, shift=0.5), estimator=estimator).item()
    far = mmd_loss(s, _sample(256, 8, 1, shift=2.0), estimator=estimator).item()
    assert abs(same) < near < far


def test_losses_give_gradients_and_reject_bad_input():
    s = _sample(8, 4, 0).requires_grad_(True)
    t = _sample(8, 4, 1, shift=1.0)
    for loss in (coral_loss(s, t), mmd_loss(s, t)):
        (g,) = torch.autograd.grad(loss, s)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 2 rows"):
        coral_loss(s[:1], t)
    with pytest.raises(ConfigError, match="estimator"):
        mmd_loss(s, t, estimator="quadratic")
    assert torch.isfinite(mmd_loss(torch.zeros(4, 3), torch.zeros(4, 3)))
