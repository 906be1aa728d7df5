r"""Cross-Iteration Batch Normalization (Yao et al., CVPR 2021), without the Taylor compensation.

CBN pools the batch statistics of the last ``k`` iterations to estimate them from more samples.
Per channel it keeps the mean ``μ`` and the mean square ``ν = E[x²]`` of each past batch and
uses

.. math::
    \bar\mu_t = \frac{1}{k'}\sum_{\tau=0}^{k'-1} \mu_{t-\tau},\quad
    \bar\nu_t = \frac{1}{k'}\sum_{\tau=0}^{k'-1} \max(\nu_{t-\tau}, \mu_{t-\tau}^2),\quad
    \bar\sigma^2_t = \bar\nu_t - \bar\mu_t^2

over the ``k'`` iterations available (``k' = 1`` during the burn-in); gradients flow through the
current batch's statistics only. The paper's max keeps every term's variance non-negative.

**Approximation.** The paper compensates each past statistic for the weight change since it was
taken, ``μ_{t−τ}(θ_t) ≈ μ_{t−τ}(θ_{t−τ}) + ∂μ_{t−τ}/∂θ_{t−τ} (θ_t − θ_{t−τ})``, which needs
the preceding layer's weights and their Jacobians. This layer stores the raw past statistics
(``τ``-step-old values are used as they were taken): the paper's "naive" cross-iteration
baseline with its variance correction, exact when the weights move slowly (small learning
rates, the end of training), biased otherwise. Eval mode uses running averages of the pooled
statistics, like batch norm.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import RunningStatsNorm2d, dd

__all__ = ["CrossIterationBatchNorm2d"]


class CrossIterationBatchNorm2d(RunningStatsNorm2d):
    """Batch normalization over the statistics of the last ``window`` iterations (see the module).

    Buffers: ``past_mean``/``past_square`` ``(window - 1, C)`` (newest first) and ``past_count``,
    how many of them are filled, besides the running statistics.

    Args:
        num_features: C, the number of channels.
        window: k, iterations pooled (the paper's 8 for detection), current one included.
        burn_in: iterations before past statistics are used (the paper starts pooling late
            in training; 0 pools from the start).
        eps: added to the variance.
        momentum: running-average momentum for eval mode (None: cumulative average).
        affine: add a per-channel ``weight`` and ``bias``.
        track_running_stats: keep running statistics for eval mode.
        device: buffer device.
        dtype: buffer dtype.

    Raises:
        ValueError: for ``window < 1``.

    Example:
        >>> cbn = CrossIterationBatchNorm2d(8, window=4)
        >>> for _ in range(5):
        ...     y = cbn(torch.randn(2, 8, 4, 4))
        >>> int(cbn.past_count), y.shape
        (3, torch.Size([2, 8, 4, 4]))
    """

    def __init__(self, num_features: int, *, window: int = 8, burn_in: int = 0, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = False, track_running_stats: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, mean_shape=(num_features,), var_shape=(num_features,), eps=eps,
                         momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         device=device, dtype=dtype)
        if window < 1:
            raise ValueError(f"CrossIterationBatchNorm2d: window must be at least 1, got {window}")
        self.window = window
        self.burn_in = burn_in
        self.register_buffer("past_mean", torch.zeros(window - 1, num_features, **dd(device, dtype)))
        self.register_buffer("past_square", torch.zeros(window - 1, num_features, **dd(device, dtype)))
        self.register_buffer("past_count", torch.zeros((), dtype=torch.long, device=device))

    def reset_running_stats(self) -> None:
        """Forget the running and the past statistics."""
        super().reset_running_stats()
        self.past_mean.zero_()
        self.past_square.zero_()
        self.past_count.zero_()

    def _pooled(self, mean: Tensor, square: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance pooled over this batch and the filled past slots; updates the slots."""
        slots = torch.arange(self.window - 1, device=mean.device)
        use = self.num_batches_tracked >= self.burn_in
        valid = ((slots < self.past_count) & use).to(mean.dtype)[:, None]  # (k-1, 1)
        past_mean, past_square = self.past_mean.to(mean.dtype), self.past_square.to(mean.dtype)
        total = 1 + valid.sum()
        pooled_mean = (mean + (valid * past_mean).sum(0)) / total
        pooled_square = (torch.maximum(square, mean.square())
                         + (valid * torch.maximum(past_square, past_mean.square())).sum(0)) / total
        if self.window > 1:
            with torch.no_grad():
                self.past_mean.copy_(torch.cat([mean.detach()[None], self.past_mean[:-1]]))
                self.past_square.copy_(torch.cat([square.detach()[None], self.past_square[:-1]]))
                self.past_count.copy_((self.past_count + 1).clamp_max(self.window - 1))
        return pooled_mean, (pooled_square - pooled_mean.square()).clamp_min(0)

    def forward(self, x: Tensor) -> Tensor:
        """Standardise ``x`` with the cross-iteration statistics (running ones in eval mode)."""
        if self.use_batch_stats:
            mean = x.mean((0, 2, 3))
            square = x.square().mean((0, 2, 3))
            if self.training:
                mean, var = self._pooled(mean, square)
            else:
                var = (square - mean.square()).clamp_min(0)
            self._track(mean, var, x.numel() // x.shape[1])
        else:
            mean, var = self.running_mean, self.running_var
        return self._affine((x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}, burn_in={self.burn_in}"
