"""Kalman Normalization against the paper's update, restated."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condnorm.norms import KalmanNorm2d


def _x(c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(4, c, 5, 5, generator=torch.Generator().manual_seed(seed)) * 2 + 1


def test_the_estimate_fuses_the_batch_and_the_previous_layers_statistics() -> None:
    kn = KalmanNorm2d(3, prev_features=2)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        kn.transition.copy_(torch.randn(3, 2, generator=g))
        kn.gain_logit.copy_(torch.tensor([-1.0, 0.0, 2.0]))
    prev_mean, prev_var = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.3])
    x = _x()
    bm, bv = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
    a, q = kn.transition, torch.sigmoid(kn.gain_logit)
    prior_m = a @ prev_mean
    prior_v = torch.stack([sum(a[i, j] ** 2 * prev_var[j] for j in range(2)) for i in range(3)])
    mean = prior_m + q * (bm - prior_m)
    var = (1 - q) * prior_v + q * bv + q * (1 - q) * (bm - prior_m) ** 2
    est = kn.estimate(x, prev_mean, prev_var)
    torch.testing.assert_close(est[0], mean)
    torch.testing.assert_close(est[1], var)
    out = kn.train()(x, prev_mean=prev_mean, prev_var=prev_var)
    torch.testing.assert_close(out, (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5))


def test_without_the_previous_layer_it_is_batch_norm() -> None:
    x = _x()
    torch.testing.assert_close(KalmanNorm2d(3)(x), F.batch_norm(x, None, None, training=True))


def test_eval_uses_the_running_average_of_the_estimates() -> None:
    kn = KalmanNorm2d(3, momentum=1.0)
    prev = (torch.zeros(3), torch.ones(3))
    x = _x()
    mean, _ = kn.estimate(x, *prev)
    kn.train()(x, prev_mean=prev[0], prev_var=prev[1])
    torch.testing.assert_close(kn.running_mean, mean.detach())
    assert kn.eval().estimate(_x(seed=1))[0] is kn.running_mean


def test_kalman_errors() -> None:
    kn = KalmanNorm2d(3, prev_features=2)
    with pytest.raises(ValueError, match="pass both prev_mean= and prev_var="):
        kn(_x(), prev_mean=torch.zeros(2))
    with pytest.raises(ValueError, match=r"expected shape \(C_prev=2\), got \(3,\)"):
        kn(_x(), prev_mean=torch.zeros(3), prev_var=torch.ones(3))
