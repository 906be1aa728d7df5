"""Region Normalization (RN-B with a given mask, RN-L with a learned one) against a restatement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condnorm.norms import LearnedRegionNorm2d, RegionNorm2d


def _restated(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for inside in (True, False):
                sel = (mask[n, 0] > 0.5) == inside
                if sel.any():
                    v = x[n, c][sel]
                    out[n, c][sel] = (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + eps)
    return out


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 6, 5, generator=g) * 2 + 1
    return x, (torch.rand(3, 1, 6, 5, generator=g) > 0.4).float()


def test_each_region_of_each_channel_is_standardised_on_its_own() -> None:
    x, mask = _data()
    torch.testing.assert_close(RegionNorm2d(4)(x, mask=mask), _restated(x, mask))


def test_an_empty_region_leaves_instance_norm() -> None:
    x, _ = _data()
    torch.testing.assert_close(RegionNorm2d(4)(x, mask=torch.ones(3, 1, 6, 5)), F.instance_norm(x))


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
    rnl = LearnedRegionNorm2d(4, threshold=0.5)
    x, _ = _data()
    pooled = torch.cat([x.max(1, keepdim=True).values, x.mean(1, keepdim=True)], 1)
    s = torch.sigmoid(F.conv2d(pooled, rnl.response.weight, rnl.response.bias, padding=1))
    mask = (s > 0.5).float()
    assert 0 < mask.mean() < 1
    torch.testing.assert_close(rnl(x), _restated(x, mask) * s)


def test_learned_region_kernel_must_be_odd() -> None:
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        LearnedRegionNorm2d(4, kernel_size=2)
