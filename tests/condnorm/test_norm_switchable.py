"""Switchable and Sparse Switchable Normalization, and sparsemax, against restatements."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from condnorm.norms import SparseSwitchableNorm2d, SwitchableNorm2d, sparsemax


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 6, 5, 7, generator=torch.Generator().manual_seed(seed)) * 3 + 1


def _moments(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dims, keepdim=True), x.var(dims, keepdim=True, unbiased=False)


def _restated(x, wm, wv, bn=None, eps=1e-5):
    stats = [_moments(x, (2, 3)), _moments(x, (1, 2, 3)), bn or _moments(x, (0, 2, 3))]
    mean = sum(w * m for w, (m, _) in zip(wm, stats))
    var = sum(w * v for w, (_, v) in zip(wv, stats))
    return (x - mean) / torch.sqrt(var + eps)


def test_switchable_mixes_in_ln_bn_statistics_with_softmax_weights() -> None:
    sn = SwitchableNorm2d(6)
    with torch.no_grad():
        sn.mean_weight.copy_(torch.tensor([0.3, -1.0, 2.0]))
        sn.var_weight.copy_(torch.tensor([1.5, 0.2, -0.4]))
    x = _x()
    wm, wv = sn.mean_weight.softmax(0), sn.var_weight.softmax(0)
    torch.testing.assert_close(sn.train()(x), _restated(x, wm, wv))


def test_eval_replaces_the_batch_statistics_by_their_moving_averages() -> None:
    sn = SwitchableNorm2d(6, momentum=1.0)
    x = _x()
    sn.train()(x)
    n = x.numel() / x.shape[1]
    bn_var = x.var((0, 2, 3), unbiased=False) * n / (n - 1)
    torch.testing.assert_close(sn.running_mean, x.mean((0, 2, 3)))
    torch.testing.assert_close(sn.running_var, bn_var)
    other = _x(1)
    third = torch.full((3,), 1 / 3)
    expected = _restated(other, third, third, bn=(sn.running_mean[:, None, None], bn_var[:, None, None]))
    torch.testing.assert_close(sn.eval()(other), expected)


def _sparsemax_by_bisection(z: torch.Tensor) -> torch.Tensor:
    lo, hi = z.min() - 1, z.max()
    for _ in range(100):  # the τ with Σ max(z − τ, 0) = 1
        tau = (lo + hi) / 2
        lo, hi = (tau, hi) if (z - tau).clamp_min(0).sum() > 1 else (lo, tau)
    return (z - (lo + hi) / 2).clamp_min(0)


def test_sparsemax_is_the_projection_onto_the_simplex() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        z = torch.randn(5, generator=g, dtype=torch.float64) * 2
        p = sparsemax(z)
        torch.testing.assert_close(p, _sparsemax_by_bisection(z))
    batch = torch.randn(3, 4, generator=g)
    torch.testing.assert_close(sparsemax(batch, dim=0).sum(0), torch.ones(4))


def test_sparse_switchable_with_one_winner_is_instance_norm() -> None:
    ssn = SparseSwitchableNorm2d(6)
    with torch.no_grad():
        ssn.mean_weight.copy_(torch.tensor([3.0, 0.0, 0.5]))
        ssn.var_weight.copy_(torch.tensor([2.0, -1.0, 0.0]))
    wm, wv = ssn.importance()
    assert wm.tolist() == [1.0, 0.0, 0.0] and wv.tolist() == [1.0, 0.0, 0.0]
    x = _x()
    torch.testing.assert_close(ssn.train()(x), F.instance_norm(x))


def test_sparse_switchable_starts_with_equal_shares_like_switchable() -> None:
    x = _x()
    torch.testing.assert_close(SparseSwitchableNorm2d(6)(x), SwitchableNorm2d(6)(x))
