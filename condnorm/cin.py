"""Conditional instance normalization: one scale and shift per style (Dumoulin et al., ICLR 2017)."""

from __future__ import annotations

import torch

from .cbn import ConditionalBatchNorm2d
from .norm import NormSpec

__all__ = ["CIN", "ConditionalInstanceNorm2d"]


class ConditionalInstanceNorm2d(ConditionalBatchNorm2d):
    r"""Instance normalization with a per-style affine transform and style mixing.

    .. math::
        \mathrm{out} = \mathrm{IN}(x)\,(1 + \gamma_s) + \beta_s, \qquad
        \gamma = \sum_k w_k \gamma_k,\ \beta = \sum_k w_k \beta_k \ \text{(mixing)}

    One network learns ``num_styles`` styles that share every convolution and differ only in
    these ``[S, C]`` tables (the paper trains 32). A style id ``(N,)`` picks a row; style
    weights ``(N, S)`` blend the rows, which is the paper's interpolation between styles when
    the weights are convex. This is :class:`ConditionalBatchNorm2d`'s table mode with
    instance statistics: the same lookup (:func:`condnorm.functional.mix_table`), parameters
    and checks.

    The paper (and magenta's ``conditional_instance_norm``) uses a plain γ initialised to 1:
    ``plain_gamma=True``. The default ``1 + γ`` with zero tables is the same function at init
    and keeps condnorm's identity-after-normalisation convention.

    Args:
        num_features: C, channels of ``x``.
        num_styles: S, number of styles.
        norm: the parameter-free normalizer (instance statistics by default).
        plain_gamma: use ``γ`` instead of ``1 + γ`` (γ initialised to 1).
        eps: the normalizer's epsilon.
        momentum: running-statistics momentum (only for normalizers that keep them).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, H, W)``
        - condition: ``(N,)`` integer style ids or ``(N, S)`` floating style weights
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = ConditionalInstanceNorm2d(8, num_styles=32)
        >>> layer(torch.randn(2, 8, 16, 16), torch.tensor([5, 31])).shape
        torch.Size([2, 8, 16, 16])
        >>> halfway = torch.zeros(2, 32).index_fill_(1, torch.tensor([5, 31]), 0.5)
        >>> layer(torch.randn(2, 8, 16, 16), halfway).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self,
        num_features: int,
        *,
        num_styles: int,
        norm: NormSpec = "instance",
        plain_gamma: bool = False,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, num_classes=num_styles, norm=norm, plain_gamma=plain_gamma,
                         eps=eps, momentum=momentum, device=device, dtype=dtype)

    @property
    def num_styles(self) -> int:
        """S, the number of styles (rows of the tables)."""
        return self.num_classes

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_styles={self.num_styles}, plain_gamma={self.plain_gamma}"


CIN = ConditionalInstanceNorm2d
