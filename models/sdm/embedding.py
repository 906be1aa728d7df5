"""The sinusoidal timestep embedding of diffusion UNets (Vaswani et al.'s positions, DDPM's timesteps)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["timestep_embedding"]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    r"""``[cos(t·f_k), sin(t·f_k)]`` with ``f_k = max_period^{-k/(dim/2)}``, ``k = 0 … dim/2 - 1``.

    Cosines first, as in ADM/SDM. ``t`` may be fractional (DDIM's timesteps are integers, but
    the network takes any float).

    Args:
        t: timesteps ``(N,)``.
        dim: D, the embedding size (even).
        max_period: the longest period.

    Returns:
        ``(N, D)`` float32 (or ``t``'s floating dtype).

    Example:
        >>> e = timestep_embedding(torch.tensor([0.0, 10.0]), 8)
        >>> e.shape, e[0].tolist()
        (torch.Size([2, 8]), [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    if dim % 2:
        raise ValueError(f"timestep_embedding: dim must be even, got {dim}")
    half = dim // 2
    dtype = t.dtype if t.is_floating_point() else torch.float32
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=dtype) * (-math.log(max_period) / half))
    args = t.to(dtype)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)
