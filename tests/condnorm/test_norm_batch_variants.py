"""Extended BN and L1-norm BN against restatements."""

from __future__ import annotations

import math

import torch

from condnorm.norms import ExtendedBatchNorm2d, L1BatchNorm2d


def _x(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 5, 5, generator=g) * torch.tensor([1.0, 3.0, 0.5])[:, None, None] + 2


def test_extended_bn_channel_means_and_one_shared_variance() -> None:
    x = _x()
    mu = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mu) ** 2).mean()
    ebn = ExtendedBatchNorm2d(3, momentum=1.0)
    torch.testing.assert_close(ebn.train()(x), (x - mu) / torch.sqrt(var + 1e-5))
    n = x.numel()
    torch.testing.assert_close(ebn.running_var, (var * n / (n - 1)).reshape(1))
    other = _x(1)
    torch.testing.assert_close(ebn.eval()(other), (other - mu) / torch.sqrt(var * n / (n - 1) + 1e-5))


def test_l1_bn_scales_by_the_mean_absolute_deviation() -> None:
    x = _x()
    mu = x.mean(dim=(0, 2, 3), keepdim=True)
    s = math.sqrt(math.pi / 2) * (x - mu).abs().mean(dim=(0, 2, 3), keepdim=True)
    l1 = L1BatchNorm2d(3, momentum=1.0, eps=1e-3)
    torch.testing.assert_close(l1.train()(x), (x - mu) / (s + 1e-3))
    n = x.numel() / 3
    torch.testing.assert_close(l1.running_var, s.flatten() ** 2 * n / (n - 1))
    other = _x(1)
    scale = l1.running_var.sqrt()[:, None, None]
    torch.testing.assert_close(l1.eval()(other), (other - mu) / (scale + 1e-3))


def test_l1_scale_matches_the_std_on_gaussian_data() -> None:
    x = torch.randn(64, 2, 32, 32, generator=torch.Generator().manual_seed(0)) * 3
    assert abs(L1BatchNorm2d(2)(x).std().item() - 1) < 0.01
