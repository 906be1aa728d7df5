"""Plain-torch restatements of the normalizers and activations the modulation layers build on.

Written from the formulas (mean/variance by hand), not from condnorm or torch.nn.functional's norms.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def group_norm(x: Tensor, groups: int, eps: float) -> Tensor:
    """GN without affine: statistics over each group's channels and all positions, biased variance."""
    g = x.reshape(x.shape[0], groups, -1)
    mean = g.mean(-1, keepdim=True)
    var = ((g - mean) ** 2).mean(-1, keepdim=True)
    return ((g - mean) / torch.sqrt(var + eps)).reshape(x.shape)


def layer_norm_last(x: Tensor, eps: float) -> Tensor:
    """LN over the last dimension without affine."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def rms_norm_last(x: Tensor, eps: float) -> Tensor:
    """x / sqrt(mean(x²) + eps) over the last dimension."""
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def silu(x: Tensor) -> Tensor:
    return x / (1 + torch.exp(-x))


def mish(x: Tensor) -> Tensor:
    return x * torch.tanh(torch.log1p(torch.exp(x)))


def randomize(module: nn.Module, seed: int = 0, std: float = 0.3) -> nn.Module:
    """Random, non-identity values for every parameter (so zero-init cannot hide a bug)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
