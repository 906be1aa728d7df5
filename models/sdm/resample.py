"""The UNet's resolution changes: a strided conv down, nearest-neighbour ×2 and a conv up."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Downsample", "Upsample"]


class Downsample(nn.Module):
    """Halve ``H`` and ``W`` with a 3×3 stride-2 conv (ADM's ``Downsample(use_conv=True)``).

    Example:
        >>> import torch
        >>> Downsample(8)(torch.randn(2, 8, 16, 16)).shape
        torch.Size([2, 8, 8, 8])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` → ``(N, C, ⌈H/2⌉, ⌈W/2⌉)``."""
        return self.conv(x)


class Upsample(nn.Module):
    """Double ``H`` and ``W`` (nearest) and smooth with a 3×3 conv (ADM's ``Upsample(use_conv=True)``).

    Example:
        >>> import torch
        >>> Upsample(8)(torch.randn(2, 8, 4, 4)).shape
        torch.Size([2, 8, 8, 8])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` → ``(N, C, 2H, 2W)``."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
