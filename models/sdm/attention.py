"""Multi-head self-attention over the pixels of a feature map (the UNet's low resolutions)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["AttentionBlock"]


class AttentionBlock(nn.Module):
    r"""``x + proj(attention(qkv(GN(x))))`` over the ``H·W`` positions, heads of ``head_channels``.

    Plain softmax attention written out (``softmax(q kᵀ / √d) v``), so it exports to ONNX and runs
    in float64 for gradient checks. The output projection starts at zero (the block is the
    identity at init), as ADM's.

    Args:
        channels: C (a multiple of ``head_channels``).
        head_channels: channels per head (SDM: 64).
        num_groups: groups of the group norm (32).

    Shape:
        - x: ``(N, C, H, W)``
        - output: ``(N, C, H, W)``

    Example:
        >>> block = AttentionBlock(32, head_channels=16, num_groups=8)
        >>> x = torch.randn(2, 32, 4, 4)
        >>> torch.equal(block(x), x)                       # zero output projection at init
        True
    """

    def __init__(self, channels: int, *, head_channels: int = 64, num_groups: int = 32) -> None:
        super().__init__()
        if channels % head_channels:
            raise ValueError(f"AttentionBlock: channels {channels} is not a multiple of head_channels {head_channels}")
        self.heads = channels // head_channels
        self.norm = nn.GroupNorm(num_groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Attend over the pixels of ``x`` ``(N, C, H, W)``."""
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x).reshape(n, c, h * w)).reshape(n * self.heads, 3, c // self.heads,
                                                                        h * w).unbind(1)
        weights = torch.softmax(torch.einsum("bdi,bdj->bij", q, k) / math.sqrt(c // self.heads), dim=-1)
        out = torch.einsum("bij,bdj->bdi", weights, v).reshape(n, c, h * w)
        return x + self.proj(out).reshape(n, c, h, w)
