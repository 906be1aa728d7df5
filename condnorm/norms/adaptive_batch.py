r"""Adaptive Batch Normalization: a learned blend of the input and its batch norm.

.. math::
    y = a\,x + b\,\mathrm{BN}(x)

with scalar ``a`` and ``b`` (Chen, Xu & Koltun, ICCV 2017, "adaptive normalization"; the seed
article's ``AdaptiveBatchNorm2d`` sample). The sample allocates ``a`` and ``b`` with
``torch.FloatTensor(1, 1, 1, 1)`` and never initialises them (their value is whatever memory
held); here ``a = 1``, ``b = 0``, so the layer starts as the identity and learns how much
normalization to use. Names follow the sample: ``a``, ``b``, and the inner ``bn``
(``BatchNorm2d``, with its running statistics; affine only with ``affine=True``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import dd

__all__ = ["AdaptiveBatchNorm2d"]


class AdaptiveBatchNorm2d(nn.Module):
    """``a · x + b · BN(x)`` with learned scalars ``a`` (init 1) and ``b`` (init 0).

    Args:
        num_features: C, the number of channels.
        eps: the batch norm's epsilon.
        momentum: the batch norm's running-average momentum (None: cumulative average).
        affine: give the inner batch norm its ``weight`` and ``bias`` (the sample's default; off
            under a conditional layer).
        track_running_stats: the batch norm keeps running statistics for eval mode.
        device: parameter device.
        dtype: parameter dtype.

    Example:
        >>> m = AdaptiveBatchNorm2d(100)
        >>> x = torch.randn(20, 100, 35, 45)
        >>> torch.equal(m(x), x)  # a = 1, b = 0 at init
        True
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.num_features = num_features
        self.bn = nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats,
                                 **dd(device, dtype))
        self.a = nn.Parameter(torch.ones(1, 1, 1, 1, **dd(device, dtype)))
        self.b = nn.Parameter(torch.zeros(1, 1, 1, 1, **dd(device, dtype)))

    @property
    def momentum(self) -> float | None:
        """The inner batch norm's momentum (what conditional layers set through ``momentum=``)."""
        return self.bn.momentum

    @momentum.setter
    def momentum(self, value: float | None) -> None:
        self.bn.momentum = value

    def forward(self, x: Tensor) -> Tensor:
        """Blend ``x`` with its batch normalization."""
        return self.a * x + self.b * self.bn(x)

    def extra_repr(self) -> str:
        return f"{self.num_features}"
