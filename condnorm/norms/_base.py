"""What the normalizers of :mod:`condnorm.norms` share: the optional affine and running statistics.

Every normalizer here is parameter-free *in the affine sense* by default (``affine=False``: the
conditional layer predicts the scale and shift); ``affine=True`` adds the usual per-channel
``weight`` (ones) and ``bias`` (zeros) for standalone use. Parameters that a paper's statistics
or standardisation need (switch weights, FRN's τ, ...) are the normalizer's own and stay.

Normalizers that keep running statistics derive from :class:`RunningStatsNorm2d`: buffers
``running_mean``, ``running_var`` and ``num_batches_tracked`` updated like ``BatchNorm2d``
(exponential average with ``momentum``, cumulative average with ``momentum=None``, variance
with Bessel's correction), so :func:`condnorm.recalibrate` can re-estimate them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._check import check_shape

__all__ = ["Normalizer2d", "RunningStatsNorm2d", "dd"]


def dd(device: torch.device | str | None, dtype: torch.dtype | None) -> dict[str, Any]:
    """The ``device``/``dtype`` keywords of a constructor, as one dict.

    Example:
        >>> dd("cpu", None)
        {'device': 'cpu', 'dtype': None}
    """
    return {"device": device, "dtype": dtype}


class Normalizer2d(nn.Module):
    """Base of the ``(N, C, H, W)`` normalizers: ``num_features``, ``eps`` and the optional affine.

    Args:
        num_features: C, the number of channels.
        eps: added to the variance (or the normalizer's denominator) for stability.
        affine: add a per-channel ``weight`` and ``bias`` after standardising.
        device: parameter device.
        dtype: parameter dtype.

    Example:
        >>> norm = Normalizer2d(4, affine=True)
        >>> norm.weight.shape, norm.affine
        (torch.Size([4]), True)
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, affine: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **dd(device, dtype)))
            self.bias = nn.Parameter(torch.zeros(num_features, **dd(device, dtype)))

    def _check_input(self, x: Tensor) -> None:
        """Raise unless ``x`` is ``(N, C, H, W)`` with ``C = num_features`` (static: compiles)."""
        check_shape(x, ("N", "C", "H", "W"), f"{type(self).__name__} x", {"C": self.num_features})

    def _affine(self, y: Tensor) -> Tensor:
        """``y · weight + bias`` per channel when ``affine``, else ``y``."""
        if not self.affine:
            return y
        return torch.addcmul(self.bias[:, None, None], y, self.weight[:, None, None])

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"


class RunningStatsNorm2d(Normalizer2d):
    """A normalizer with ``BatchNorm2d``-style running statistics of any shape.

    Subclasses standardise with their batch statistics while training (or always, with
    ``track_running_stats=False``) and with ``running_mean``/``running_var`` in eval mode;
    they call :meth:`_track` with each batch's statistics.

    Args:
        num_features: C, the number of channels.
        mean_shape: shape of ``running_mean`` (``(C,)`` for per-channel statistics).
        var_shape: shape of ``running_var``.
        eps: added to the variance.
        momentum: weight of the new batch in the running average; None for a cumulative average.
        affine: add a per-channel ``weight`` and ``bias``.
        track_running_stats: keep running statistics and use them in eval mode.
        device: buffer device.
        dtype: buffer dtype.

    Example:
        >>> norm = RunningStatsNorm2d(3, mean_shape=(3,), var_shape=(1,))
        >>> norm.running_mean.shape, norm.running_var.shape, norm.use_batch_stats
        (torch.Size([3]), torch.Size([1]), True)
    """

    def __init__(self, num_features: int, *, mean_shape: tuple[int, ...], var_shape: tuple[int, ...],
                 eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps=eps, affine=affine, device=device, dtype=dtype)
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        self.register_buffer("running_mean", torch.zeros(mean_shape, **dd(device, dtype)))
        self.register_buffer("running_var", torch.ones(var_shape, **dd(device, dtype)))
        self.register_buffer("num_batches_tracked", torch.zeros(mean_shape[:-1], dtype=torch.long,
                                                                device=device))

    def reset_running_stats(self) -> None:
        """Mean 0, variance 1, no batches seen."""
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    @property
    def use_batch_stats(self) -> bool:
        """Whether ``forward`` standardises with the batch's statistics (training, or no running ones)."""
        return self.training or not self.track_running_stats

    def _track(self, mean: Tensor, var: Tensor, count: int | Tensor, present: Tensor | None = None) -> None:
        """Fold one batch's statistics into the running ones (training with tracking only).

        Args:
            mean: the batch mean, ``running_mean``'s shape.
            var: the biased batch variance, ``running_var``'s shape; stored with Bessel's
                correction ``count / (count - 1)``.
            count: values behind each variance (a tensor broadcasting to ``var`` for per-group counts).
            present: bool, ``num_batches_tracked``'s shape: the groups this batch has (others keep theirs).
        """
        if not (self.training and self.track_running_stats):
            return
        with torch.no_grad():
            tracked = self.num_batches_tracked + (1 if present is None else present.long())
            self.num_batches_tracked.copy_(tracked)
            if self.momentum is None:
                factor = 1.0 / tracked.clamp_min(1).to(mean.dtype)
            else:
                factor = torch.full(tracked.shape, self.momentum, dtype=mean.dtype, device=mean.device)
            if present is not None:
                factor = factor * present.to(mean.dtype)
            count = torch.as_tensor(count, dtype=mean.dtype, device=mean.device)
            unbiased = var * count / (count - 1).clamp_min(1)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor[..., None])
            self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), factor[..., None])

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, momentum={self.momentum}, "
                f"track_running_stats={self.track_running_stats}")
