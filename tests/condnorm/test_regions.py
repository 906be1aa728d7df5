"""region_average_pool and region_broadcast: per-class pooling of features and painting of vectors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import condnorm
from condnorm.functional import region_average_pool, region_broadcast
from tests.condnorm.reference import ids_map, nearest, onehot, onehot_of


def masked_mean_by_hand(features: Tensor, seg: Tensor) -> Tensor:
    n, d = features.shape[:2]
    m = nearest(seg, *features.shape[-2:])
    out = torch.zeros(n, seg.shape[1], d, dtype=features.dtype)
    for b in range(n):
        for k in range(seg.shape[1]):
            pixels = m[b, k] > 0
            if pixels.any():
                out[b, k] = features[b][:, pixels].mean(1)
    return out


def test_region_average_pool_is_the_masked_mean() -> None:
    features = torch.randn(2, 5, 8, 8)
    seg = onehot(2, 6, 16, 16, seed=4)
    seg[0, 2] = 0  # class 2 absent from sample 0 (its pixels belong to no class)
    pooled = region_average_pool(features, seg)
    assert pooled.shape == (2, 6, 5)
    assert torch.count_nonzero(pooled[0, 2]) == 0
    torch.testing.assert_close(pooled, masked_mean_by_hand(features, seg))
    assert condnorm.region_average_pool is region_average_pool


def test_region_average_pool_soft_weights() -> None:
    features, seg = torch.randn(1, 3, 4, 4), torch.rand(1, 2, 4, 4)
    expected = (seg[:, :, None] * features[:, None]).sum((-1, -2)) / seg.sum((-1, -2))[..., None]
    torch.testing.assert_close(region_average_pool(features, seg), expected)


def test_region_average_pool_gradcheck() -> None:
    features = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    seg = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(region_average_pool, (features, seg))


def test_region_average_pool_errors() -> None:
    with pytest.raises(ValueError, match=r"region_average_pool segmap: .*'N' is 3, expected 2"):
        region_average_pool(torch.randn(2, 3, 4, 4), torch.rand(3, 2, 4, 4))
    with pytest.raises(ValueError, match=r"region_average_pool features: expected a 4-d tensor"):
        region_average_pool(torch.randn(3, 4, 4), torch.rand(3, 2, 4, 4))


@pytest.mark.parametrize("per_sample", [False, True])
def test_region_broadcast_lookup(per_sample: bool) -> None:
    values = torch.randn(2, 4, 3) if per_sample else torch.randn(4, 3)
    ids = ids_map(2, 4, 5, 6)
    table = values if per_sample else values.expand(2, 4, 3)
    expected = torch.stack([table[b][ids[b]] for b in range(2)]).permute(0, 3, 1, 2)
    seg = onehot_of(ids, 4)
    torch.testing.assert_close(region_broadcast(ids, values), expected)
    torch.testing.assert_close(region_broadcast(seg, values), expected)


def test_region_broadcast_inverts_pooling_on_region_constant_maps() -> None:
    seg = onehot(2, 3, 6, 6, seed=2)
    codes = torch.randn(2, 3, 4)
    torch.testing.assert_close(region_average_pool(region_broadcast(seg, codes), seg), codes)


@pytest.mark.parametrize(
    ("seg", "values", "err", "match"),
    [
        (torch.rand(2, 3, 4, 4), torch.randn(4, 5), ValueError, r"segmap: .*'L' is 3, expected 4"),
        (torch.rand(2, 3, 4, 4), torch.randn(3, 3, 5), ValueError, r"segmap: .*'N' is 2, expected 3"),
        (torch.rand(2, 3, 4, 4), torch.randn(5), ValueError, r"expected \(L, C\) or \(N, L, C\)"),
        (ids_map(2, 9, 4, 4), torch.randn(4, 5), ValueError, r"ids must be in \[0, 4\)"),
        (torch.rand(2, 4, 4), torch.randn(4, 5), TypeError, r"integer tensor"),
    ],
)
def test_region_broadcast_errors(seg: Tensor, values: Tensor, err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        region_broadcast(seg, values)
