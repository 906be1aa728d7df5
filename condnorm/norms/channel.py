r"""Channel Normalization (Dai & Heckel, 2019): standardise each position over the channels.

.. math::
    \mu_{n,h,w} = \mathrm{E}_c[x_{n,c,h,w}],\quad
    \sigma^2_{n,h,w} = \mathrm{Var}_c[x_{n,c,h,w}],\quad
    y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}

Layer normalization applied per pixel (the statistics of one feature vector); no running
statistics, the same computation in training and inference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Normalizer2d

__all__ = ["ChannelNorm2d"]


class ChannelNorm2d(Normalizer2d):
    """Channel Normalization: each pixel's feature vector to zero mean and unit variance.

    Args:
        num_features: C, the number of channels.
        eps: added to the variance.
        affine: add a per-channel ``weight`` and ``bias``.
        device: parameter device.
        dtype: parameter dtype.

    Example:
        >>> y = ChannelNorm2d(8)(torch.randn(2, 8, 4, 4) * 3 + 1)
        >>> bool(y.mean(1).abs().max() < 1e-5)
        True
    """

    def forward(self, x: Tensor) -> Tensor:
        """Standardise ``x`` over its channels at every position."""
        self._check_input(x)
        mean = x.mean(1, keepdim=True)
        var = x.var(1, keepdim=True, correction=0)
        return self._affine((x - mean) * torch.rsqrt(var + self.eps))
