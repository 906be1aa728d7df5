"""Independent reference pieces for the layer tests: written from the formulas, not from condnorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def nearest(seg: Tensor, h: int, w: int) -> Tensor:
    """Nearest resize by index arithmetic: output pixel i reads input pixel floor(i * in / out)."""
    rows = (torch.arange(h) * seg.shape[-2]) // h
    cols = (torch.arange(w) * seg.shape[-1]) // w
    return seg[..., rows[:, None], cols[None, :]]


def batch_norm_train(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Training-mode BatchNorm without affine: batch statistics, biased variance."""
    mean = x.mean((0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean((0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def ids_map(n: int, labels: int, h: int, w: int, seed: int = 0) -> Tensor:
    return torch.randint(labels, (n, h, w), generator=torch.Generator().manual_seed(seed))


def onehot(n: int, labels: int, h: int, w: int, seed: int = 0) -> Tensor:
    return F.one_hot(ids_map(n, labels, h, w, seed), labels).permute(0, 3, 1, 2).float()


def spade_gamma_beta(m: Tensor, sd: dict[str, Tensor], prefix: str = "") -> tuple[Tensor, Tensor]:
    """SPADE's conv-ReLU-conv on an already resized map, from official-layout weights."""
    k = sd[prefix + "mlp_shared.0.weight"].shape[-1]
    actv = torch.relu(F.conv2d(m, sd[prefix + "mlp_shared.0.weight"], sd[prefix + "mlp_shared.0.bias"],
                               padding=k // 2))
    gamma = F.conv2d(actv, sd[prefix + "mlp_gamma.weight"], sd[prefix + "mlp_gamma.bias"], padding=k // 2)
    beta = F.conv2d(actv, sd[prefix + "mlp_beta.weight"], sd[prefix + "mlp_beta.bias"], padding=k // 2)
    return gamma, beta


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
