r"""Kalman Normalization (Wang et al., NeurIPS 2018): batch statistics fused with the previous layer's.

Layer ``k`` observes its batch statistics ``μ̄_k, σ̄²_k`` and predicts them from the previous
normalization layer's estimate ``μ̂_{k−1}, σ̂²_{k−1}`` through a learned transition ``A_k``
(``C_k × C_{k−1}``); the estimate is the Kalman update with gain ``q_k``:

.. math::
    \mu_{k|k-1} = A_k \hat\mu_{k-1},\quad \sigma^2_{k|k-1} = (A_k \circ A_k)\,\hat\sigma^2_{k-1},\\
    \hat\mu_k = \mu_{k|k-1} + q_k(\bar\mu_k - \mu_{k|k-1}),\quad
    \hat\sigma^2_k = \sigma^2_{k|k-1} + q_k(\bar\sigma^2_k - \sigma^2_{k|k-1})
    + q_k(1 - q_k)(\bar\mu_k - \mu_{k|k-1})^2

``(A ∘ A) σ̂²`` is the diagonal of ``A diag(σ̂²) Aᵀ`` (channels are treated as independent, as
batch norm does). The gain is learned per channel, ``q = sigmoid(gain_logit)``. Without the
previous layer's statistics (the first layer) the estimate is the batch's: batch norm. Eval mode
uses running averages of the estimates.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._check import check_shape
from ._base import RunningStatsNorm2d, dd

__all__ = ["KalmanNorm2d"]


class KalmanNorm2d(RunningStatsNorm2d):
    """Batch normalization whose statistics are Kalman-filtered across layers (see the module).

    Context: ``prev_mean`` and ``prev_var``, each ``(C_prev,)``, the previous layer's estimate
    (:meth:`estimate` of the previous ``KalmanNorm2d``, on that layer's input). Pass both or neither.

    Args:
        num_features: C, the number of channels.
        prev_features: C_prev, channels of the previous normalization layer (default C).
        gain_init: the gain ``q`` at init (our choice; 1 would be plain batch norm).
        eps: added to the variance.
        momentum: running-average momentum (None: cumulative average).
        affine: add a per-channel ``weight`` and ``bias``.
        track_running_stats: keep running statistics for eval mode.
        device: parameter device.
        dtype: parameter dtype.

    Raises:
        ValueError: for only one of ``prev_mean``/``prev_var``, or a wrong size.

    Example:
        >>> kn1, kn2 = KalmanNorm2d(8), KalmanNorm2d(16, prev_features=8)
        >>> h1, h2 = torch.randn(4, 8, 6, 6), torch.randn(4, 16, 6, 6)
        >>> mean1, var1 = kn1.estimate(h1)
        >>> kn2(h2, prev_mean=mean1, prev_var=var1).shape
        torch.Size([4, 16, 6, 6])
    """

    def __init__(self, num_features: int, *, prev_features: int | None = None, gain_init: float = 0.9,
                 eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, mean_shape=(num_features,), var_shape=(num_features,), eps=eps,
                         momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         device=device, dtype=dtype)
        self.prev_features = num_features if prev_features is None else prev_features
        self.transition = nn.Parameter(torch.eye(num_features, self.prev_features, **dd(device, dtype)))
        logit = math.log(gain_init / (1 - gain_init))
        self.gain_logit = nn.Parameter(torch.full((num_features,), logit, **dd(device, dtype)))

    def estimate(self, x: Tensor, prev_mean: Tensor | None = None,
                 prev_var: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The layer's statistics ``(μ̂, σ̂²)``, each ``(C,)``: filtered batch ones, or running ones in eval."""
        self._check_input(x)
        if not self.use_batch_stats:
            return self.running_mean, self.running_var
        mean = x.mean((0, 2, 3))
        var = x.var((0, 2, 3), correction=0)
        if (prev_mean is None) != (prev_var is None):
            raise ValueError("KalmanNorm2d: pass both prev_mean= and prev_var= (the previous layer's "
                             "estimate) or neither")
        if prev_mean is None:
            return mean, var
        name = "KalmanNorm2d prev_mean/prev_var"
        check_shape(prev_mean, ("C_prev",), name, {"C_prev": self.prev_features})
        check_shape(prev_var, ("C_prev",), name, {"C_prev": self.prev_features})
        prior_mean = self.transition @ prev_mean
        prior_var = self.transition.square() @ prev_var
        q = torch.sigmoid(self.gain_logit)
        innovation = mean - prior_mean
        return (prior_mean + q * innovation,
                prior_var + q * (var - prior_var) + q * (1 - q) * innovation.square())

    def forward(self, x: Tensor, prev_mean: Tensor | None = None, prev_var: Tensor | None = None) -> Tensor:
        """Standardise ``x`` with the filtered statistics (``prev_mean``, ``prev_var``: the context)."""
        mean, var = self.estimate(x, prev_mean, prev_var)
        if self.use_batch_stats:
            self._track(mean, var, x.numel() // x.shape[1])
        return self._affine((x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, prev_features={self.prev_features}"
