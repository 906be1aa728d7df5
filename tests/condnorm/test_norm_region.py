"""Region Normalization (RN-B with a given mask, RN-L with a learned one) against a restatement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condnorm.norms import LearnedRegionNorm2d, RegionNorm2d


def _restated(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    out = torch.zeros_like(x)
    inside = (mask > 0.5).expand_as(x)
    for c in range(x.shape[1]):
        for region in (inside[:, c], ~inside[:, c]):
            if region.any():
                v = x[:, c][region]  # the region's values over the whole batch
                out[:, c][region] = (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + eps)
    return out


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 6, 5, generator=g) * 2 + 1
    return x, (torch.rand(3, 1, 6, 5, generator=g) > 0.4).float()


def test_each_region_of_each_channel_is_standardised_over_the_batch() -> None:
    x, mask = _data()
    torch.testing.assert_close(RegionNorm2d(4)(x, mask=mask), _restated(x, mask))


def test_an_empty_region_leaves_batch_norm_in_train_and_eval() -> None:
    x, _ = _data()
    expected = F.batch_norm(x, None, None, training=True)
    torch.testing.assert_close(RegionNorm2d(4).eval()(x, mask=torch.ones(3, 1, 6, 5)), expected)


def test_a_mask_at_another_size_is_resized_nearest() -> None:
    x, _ = _data()
    big = (torch.rand(3, 1, 12, 10, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    small = F.interpolate(big, size=(6, 5), mode="nearest")
    torch.testing.assert_close(RegionNorm2d(4)(x, mask=big), _restated(x, small))


def test_region_norm_errors() -> None:
    x, mask = _data()
    with pytest.raises(ValueError, match="RegionNorm2d: needs mask="):
        RegionNorm2d(4)(x)
    with pytest.raises(ValueError, match=r"RegionNorm2d mask: expected shape \(N=3, 1, H', W'\)"):
        RegionNorm2d(4)(x, mask=mask.repeat(1, 2, 1, 1))


def test_learned_regions_come_from_the_thresholded_response_map() -> None:
    torch.manual_seed(0)
    rnl = LearnedRegionNorm2d(4, threshold=0.5, kernel_size=3)
    with torch.no_grad():
        for p in (*rnl.gamma.parameters(), *rnl.beta.parameters()):
            p.normal_(0, 0.3)
    x, _ = _data()
    pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True).values], 1)
    s = torch.sigmoid(F.conv2d(pooled, rnl.response.weight, padding=1))
    mask = (s >= 0.5).float()
    assert 0 < mask.mean() < 1
    gamma = F.conv2d(s, rnl.gamma.weight, rnl.gamma.bias, padding=1)
    beta = F.conv2d(s, rnl.beta.weight, rnl.beta.bias, padding=1)
    torch.testing.assert_close(rnl(x), _restated(x, mask) * (1 + gamma) + beta)


def test_learned_regions_start_as_plain_region_norm_and_the_response_learns() -> None:
    torch.manual_seed(0)
    rnl = LearnedRegionNorm2d(4, threshold=0.5)
    x, _ = _data()
    mask = (rnl.spatial_response(x) >= 0.5).float()
    torch.testing.assert_close(rnl(x), _restated(x, mask))
    opt = torch.optim.SGD(rnl.parameters(), lr=0.1)
    for _ in range(2):  # γ/β leave zero first, then the response convolution gets a gradient
        opt.zero_grad()
        (rnl(x) * x).sum().backward()
        opt.step()
    assert rnl.response.weight.grad.abs().sum() > 0


def test_learned_region_kernel_must_be_odd() -> None:
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        LearnedRegionNorm2d(4, kernel_size=2)
