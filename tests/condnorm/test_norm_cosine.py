"""Cosine Normalization (cosine and Pearson responses) against an unfold restatement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condnorm.norms import CosineNorm2d


def _restated(x: torch.Tensor, w: torch.Tensor, centered: bool, eps: float = 1e-5) -> torch.Tensor:
    k = w.shape[-1]
    patches = F.unfold(x, k, padding=k // 2)  # (N, C k², L)
    flat = w.flatten(1)  # (C, C k²)
    if centered:
        patches = patches - patches.mean(1, keepdim=True)
        flat = flat - flat.mean(1, keepdim=True)
    dot = flat @ patches
    cos = dot / (flat.norm(dim=1)[:, None] * patches.norm(dim=1, keepdim=True) + eps)
    return cos.view(x.shape[0], w.shape[0], *x.shape[2:])


@pytest.mark.parametrize("centered", [False, True])
def test_responses_are_cosines_of_filters_and_patches(centered: bool) -> None:
    torch.manual_seed(0)
    cn = CosineNorm2d(4, kernel_size=3, centered=centered)
    with torch.no_grad():
        cn.kernel.add_(torch.randn_like(cn.kernel) * 0.3)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    cn = cn.double()
    y = cn(x)
    torch.testing.assert_close(y, _restated(x, cn.kernel, centered))
    assert y.abs().max() <= 1


def test_at_init_each_pixel_vector_is_divided_by_its_norm() -> None:
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(CosineNorm2d(4)(x), x / (x.norm(dim=1, keepdim=True) + 1e-5))


def test_cosine_kernel_must_be_odd() -> None:
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        CosineNorm2d(4, kernel_size=2)
