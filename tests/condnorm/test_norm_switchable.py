"""Switchable and Sparse Switchable Normalization, and sparsemax, against restatements."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condnorm.norms import SparseSwitchableNorm2d, SwitchableNorm2d, sparsemax
from condnorm.norms.switchable import MAX_RADIUS, sparsestmax


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


def _grid(steps: int = 600) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(steps + 1), torch.arange(steps + 1), indexing="ij")
    keep = i + j <= steps
    a, b = i[keep].double() / steps, j[keep].double() / steps
    return torch.stack([a, b, 1 - a - b], -1)  # points of the simplex


@pytest.mark.parametrize("radius", [0.0, 0.2, 0.45, 0.7, MAX_RADIUS])
def test_sparsestmax_is_the_nearest_point_outside_the_disc(radius: float) -> None:
    grid = _grid()
    outside = grid[(grid - 1 / 3).norm(dim=-1) >= radius]
    g = torch.Generator().manual_seed(0)
    for z in torch.randn(30, 3, generator=g, dtype=torch.float64) * 0.4:
        p = sparsestmax(z, radius)
        assert abs(p.sum().item() - 1) < 1e-9 and p.min() >= 0
        assert (p - 1 / 3).norm() >= radius - 1e-9
        brute = (outside - z).square().sum(-1).min()
        assert (p - z).square().sum() <= brute + 1e-9  # no grid point outside the disc is nearer
        assert (p - z).square().sum() >= brute - 3e-3  # and the grid comes close to it


def test_sparsestmax_at_radius_zero_is_sparsemax_and_at_the_maximum_a_vertex() -> None:
    z = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sparsestmax(z, 0.0), sparsemax(z))
    vertices = sparsestmax(z, MAX_RADIUS)
    torch.testing.assert_close(vertices, F.one_hot(z.argmax(-1), 3).float(), atol=1e-6, rtol=0)


def test_sparsestmax_errors() -> None:
    with pytest.raises(ValueError, match="expects 3 scores in the last dimension"):
        sparsestmax(torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match=r"radius must be in \[0, √\(2/3\) = 0.8165\], got 0.9"):
        sparsestmax(torch.zeros(3), 0.9)


def test_sparse_switchable_radius_is_a_saved_buffer_used_by_the_weights() -> None:
    ssn = SparseSwitchableNorm2d(6, radius=0.5)
    assert float(ssn.state_dict()["radius"]) == 0.5
    wm, wv = ssn.importance()
    for w in (wm, wv):  # equal scores: pushed out of the disc, still on the simplex
        assert (w - 1 / 3).norm() >= 0.5 - 1e-6 and abs(w.sum().item() - 1) < 1e-6
