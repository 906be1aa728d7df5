"""Local Context Normalization against a per-pixel restatement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condnorm.norms import LocalContextNorm2d


def _restated(x: torch.Tensor, groups: int, kh: int, kw: int, eps: float = 1e-5) -> torch.Tensor:
    n, c, h, w = x.shape
    per = c // groups
    out = torch.empty_like(x)
    for b in range(n):
        for ch in range(c):
            g = ch // per
            for i in range(h):
                for j in range(w):
                    win = x[b, g * per:(g + 1) * per, max(i - kh // 2, 0):i + kh // 2 + 1,
                            max(j - kw // 2, 0):j + kw // 2 + 1]
                    std = torch.sqrt(win.var(unbiased=False) + eps)
                    out[b, ch, i, j] = (x[b, ch, i, j] - win.mean()) / std
    return out


def test_statistics_of_each_clipped_window_of_each_group() -> None:
    x = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 + 1
    lcn = LocalContextNorm2d(4, num_groups=2, window_size=(3, 5))
    torch.testing.assert_close(lcn(x), _restated(x, 2, 3, 5))


def test_a_window_covering_the_map_with_one_group_is_layer_norm() -> None:
    x = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(1))
    lcn = LocalContextNorm2d(4, num_groups=1, window_size=13)
    torch.testing.assert_close(lcn(x), F.group_norm(x, 1), atol=1e-5, rtol=1e-4)


def test_local_context_errors() -> None:
    with pytest.raises(ValueError, match="num_features=6 is not divisible by num_groups=4"):
        LocalContextNorm2d(6, num_groups=4)
    with pytest.raises(ValueError, match=r"window_size sides must be odd, got \(3, 4\)"):
        LocalContextNorm2d(4, window_size=(3, 4))
