"""The bottleneck of the style-transfer network: how content features take a style.

- ``"adain"``: :class:`condnorm.AdaIN` with the style's relu4_1 channel statistics
  (no parameters; pytorch-AdaIN's unbiased variance + eps by default).
- ``"adacon"``: :class:`condnorm.AdaCoN`, whose per-sample convolution is predicted from a
  style code that a small :class:`StyleCodeEncoder` computes from the style's relu4_1 features.

Both expose ``forward(content, style)`` and ``regional(content, styles, regions)`` (one style per
mask region), so :class:`~models.adain.style_transfer.StyleTransfer` drives them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

import condnorm
from condnorm.functional import calc_mean_std

from .spatial import regional_adain

__all__ = ["AdaCoNModulation", "AdaINModulation", "StyleCodeEncoder"]


class AdaINModulation(condnorm.AdaIN):
    """AdaIN at the bottleneck (parameter-free), with per-region statistics for spatial control.

    Args:
        eps: added to the variances.
        unbiased: ``n − 1`` in the variance (pytorch-AdaIN reproduces only with ``True``).

    Example:
        >>> import torch
        >>> AdaINModulation()(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 6, 6)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, *, eps: float = 1e-5, unbiased: bool = True) -> None:
        super().__init__(eps=eps, unbiased=unbiased)

    def regional(self, content: Tensor, styles: Sequence[Tensor], regions: Tensor) -> Tensor:
        """Per-region content statistics, one style per region (see :func:`regional_adain`)."""
        stats = [calc_mean_std(s, self.eps, self.unbiased) for s in styles]
        return regional_adain(content, stats, regions, eps=self.eps, unbiased=self.unbiased)


class StyleCodeEncoder(nn.Sequential):
    """Style features (relu4_1) → a style code: two 3×3 convs with LeakyReLU, global pooling, linear.

    Args:
        in_channels: channels of the style features.
        style_dim: size of the code.
        hidden: conv width.

    Shape:
        - Input: ``(N, in_channels, H, W)``, any size.
        - Output: ``(N, style_dim)``.

    Example:
        >>> import torch
        >>> StyleCodeEncoder(16, style_dim=8, hidden=8)(torch.randn(2, 16, 5, 7)).shape
        torch.Size([2, 8])
    """

    def __init__(self, in_channels: int = 512, *, style_dim: int = 64, hidden: int = 256) -> None:
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.LeakyReLU(0.2),
            nn.AvgPool2d(2, ceil_mode=True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(hidden, style_dim),
        )


class AdaCoNModulation(nn.Module):
    """AdaCoN at the bottleneck, conditioned on a code from :class:`StyleCodeEncoder`.

    Args:
        num_features: channels at the bottleneck (512 for relu4_1).
        style_dim: size of the style code.
        hidden: width of the style encoder.
        kernel_size: AdaCoN's predicted depthwise kernel size.
        groups: AdaCoN's pointwise groups (``None``: its default).
        local_window: AdaCoN's local standardisation window (``None``: its default).

    Example:
        >>> import torch
        >>> m = AdaCoNModulation(8, style_dim=4, hidden=8)
        >>> m(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 6, 6)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, num_features: int = 512, *, style_dim: int = 64, hidden: int = 256,
                 kernel_size: int = 3, groups: int | None = None, local_window: int | None = None) -> None:
        super().__init__()
        self.style_encoder = StyleCodeEncoder(num_features, style_dim=style_dim, hidden=hidden)
        self.adacon = condnorm.AdaCoN(num_features, style_dim, kernel_size=kernel_size, groups=groups,
                                      local_window=local_window)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        return self.adacon(content, self.style_encoder(style))

    def regional(self, content: Tensor, styles: Sequence[Tensor], regions: Tensor) -> Tensor:
        """Modulate the whole map with each style, then keep each style's region."""
        return sum(regions[:, k:k + 1] * self(content, s) for k, s in enumerate(styles))  # type: ignore[return-value]
