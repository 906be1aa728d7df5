r"""Batch normalization with another dispersion: Extended BN and L1-norm BN.

Both keep batch norm's per-channel mean over ``(N, H, W)`` and change the scale:

- Extended BN (Luo et al., 2020) takes one variance for the whole batch, over ``(N, C, H, W)``
  of the deviations from the channel means, so the scale is estimated from C times more values
  (its point: small batches): :math:`\sigma^2 = \mathrm{E}_{NCHW}[(x - \mu_c)^2]`.
- L1-norm BN (Wu et al., 2018) replaces the standard deviation by the mean absolute deviation
  times :math:`\sqrt{\pi/2}` (equal to σ for Gaussian data; no squares or square roots):
  :math:`s_c = \sqrt{\pi/2}\,\mathrm{E}_{NHW}|x - \mu_c|`, :math:`y = (x - \mu_c) / (s_c + \epsilon)`.

Both keep running statistics like batch norm; L1 BN's ``running_var`` holds ``s²`` (the variance
its scale implies for Gaussian data, with batch norm's ``n / (n − 1)`` factor like every running
variance here), so eval mode divides by ``√running_var + ε``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import RunningStatsNorm2d

__all__ = ["ExtendedBatchNorm2d", "L1BatchNorm2d"]


class _ChannelMeanBatchNorm2d(RunningStatsNorm2d):
    """Per-channel batch means and a subclass's scale: ``(x − μ) / scale``, running statistics for eval."""

    def __init__(self, num_features: int, *, var_shape: tuple[int, ...], eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = False, track_running_stats: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, mean_shape=(num_features,), var_shape=var_shape, eps=eps,
                         momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         device=device, dtype=dtype)

    def _dispersion(self, centred: Tensor) -> tuple[Tensor, int]:
        """The batch's ``running_var``-shaped statistic and the number of values behind it."""
        raise NotImplementedError

    def _inverse_scale(self, var: Tensor) -> Tensor:
        """``1 / scale`` from a ``running_var``-shaped statistic."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Standardise ``x`` with the batch's (training) or the running (eval) statistics."""
        self._check_input(x)
        if self.use_batch_stats:
            mean = x.mean((0, 2, 3))
            centred = x - mean[:, None, None]
            var, count = self._dispersion(centred)
            self._track(mean, var, count)
        else:
            mean, var = self.running_mean, self.running_var
            centred = x - mean[:, None, None]
        return self._affine(centred * self._inverse_scale(var)[..., None, None])


class ExtendedBatchNorm2d(_ChannelMeanBatchNorm2d):
    """Extended Batch Normalization: channel means, one variance over ``(N, C, H, W)``.

    ``running_var`` has shape ``(1,)``.

    Args:
        num_features: C, the number of channels.
        eps: added to the variance.
        momentum: running-average momentum (None: cumulative average).
        affine: add a per-channel ``weight`` and ``bias``.
        track_running_stats: keep running statistics for eval mode.
        device: buffer device.
        dtype: buffer dtype.

    Example:
        >>> ebn = ExtendedBatchNorm2d(8)
        >>> ebn(torch.randn(2, 8, 4, 4)).shape, ebn.running_var.shape
        (torch.Size([2, 8, 4, 4]), torch.Size([1]))
    """

    def __init__(self, num_features: int, **kw: object) -> None:
        super().__init__(num_features, var_shape=(1,), **kw)

    def _dispersion(self, centred: Tensor) -> tuple[Tensor, int]:
        return centred.square().mean().reshape(1), centred.numel()

    def _inverse_scale(self, var: Tensor) -> Tensor:
        return torch.rsqrt(var + self.eps)


class L1BatchNorm2d(_ChannelMeanBatchNorm2d):
    """L1-norm Batch Normalization: scale by ``√(π/2)`` times the mean absolute deviation.

    Args:
        num_features: C, the number of channels.
        eps: added to the scale (the paper's ``s + ε``).
        momentum: running-average momentum (None: cumulative average).
        affine: add a per-channel ``weight`` and ``bias``.
        track_running_stats: keep running statistics for eval mode.
        device: buffer device.
        dtype: buffer dtype.

    Example:
        >>> l1 = L1BatchNorm2d(8)
        >>> y = l1(torch.randn(64, 8, 8, 8) * 2)
        >>> round(y.std().item(), 1)
        1.0
    """

    def __init__(self, num_features: int, **kw: object) -> None:
        super().__init__(num_features, var_shape=(num_features,), **kw)

    def _dispersion(self, centred: Tensor) -> tuple[Tensor, int]:
        scale = math.sqrt(math.pi / 2) * centred.abs().mean((0, 2, 3))
        return scale.square(), centred.numel() // centred.shape[1]

    def _inverse_scale(self, var: Tensor) -> Tensor:
        return 1 / (var.sqrt() + self.eps)
