"""Channel Normalization against a restatement."""

from __future__ import annotations

import torch

from condnorm.norms import ChannelNorm2d


def test_each_position_is_standardised_over_the_channels() -> None:
    x = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
    flat = x.permute(0, 2, 3, 1)  # (N, H, W, C)
    expected = ((flat - flat.mean(-1, keepdim=True)) / torch.sqrt(flat.var(-1, unbiased=False, keepdim=True)
                                                                   + 1e-5)).permute(0, 3, 1, 2)
    torch.testing.assert_close(ChannelNorm2d(5)(x), expected)


def test_affine_scales_and_shifts_per_channel() -> None:
    norm = ChannelNorm2d(5, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(5.0))
        norm.bias.fill_(2.0)
    x = torch.randn(2, 5, 3, 4)
    torch.testing.assert_close(norm(x), ChannelNorm2d(5)(x) * torch.arange(5.0)[:, None, None] + 2)
