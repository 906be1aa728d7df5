r"""Cross-Iteration Batch Normalization (Yao et al., CVPR 2021).

CBN pools the batch statistics of the last ``k`` iterations to estimate them from more samples.
Per channel it keeps the mean ``μ`` and the mean square ``ν = E[x²]`` of each past batch and
uses

.. math::
    \bar\mu_t = \frac{1}{k'}\sum_{\tau=0}^{k'-1} \mu_{t-\tau}(\theta_t),\quad
    \bar\nu_t = \frac{1}{k'}\sum_{\tau=0}^{k'-1} \max(\nu_{t-\tau}(\theta_t), \mu_{t-\tau}(\theta_t)^2),\quad
    \bar\sigma^2_t = \bar\nu_t - \bar\mu_t^2

over the ``k'`` iterations available (``k' = 1`` during the burn-in); gradients flow through the
current batch's statistics only. The max keeps every term's variance non-negative.

A past statistic was taken with the weights of its time, ``θ_{t−τ}``; the paper compensates it
for the change of the preceding layer's weights with a first-order Taylor term,

.. math::
    \mu_{t-\tau}(\theta_t) \approx \mu_{t-\tau}(\theta_{t-\tau})
    + \frac{\partial \mu_{t-\tau}}{\partial \theta_{t-\tau}}(\theta_t - \theta_{t-\tau})

(and the same for ``ν``). Pass the preceding convolution and its input as context,
``norm(x, conv=conv, conv_input=h)`` with ``x = conv(h)``: the layer then stores, per iteration,
``∂μ/∂θ`` and ``∂ν/∂θ`` (each a ``(C, C_in/groups·kh·kw)`` weight-gradient, computed with
``torch.nn.grad.conv2d_weight``: ``∂μ_c/∂θ_c = E[patch]``, ``∂ν_c/∂θ_c = 2 E[x_c · patch]``) and
their products with ``θ_{t−τ}``, and compensates every past statistic at the current weights.
As in the paper only the directly preceding layer's weights are compensated (the layers before
it are not), the Jacobians of iteration ``t−τ`` are used for every later ``t`` (first order: the
means of a bias-free convolution are linear in θ and exact, the mean squares are not), and no
gradient flows through the compensation. Without the context (or for ``conv_fan_in=None``) the
raw past statistics are pooled, the paper's "naive" cross-iteration baseline. Eval mode uses
running averages of the pooled statistics, like batch norm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.grad import conv2d_weight

from ._base import RunningStatsNorm2d, dd

__all__ = ["CrossIterationBatchNorm2d"]


class CrossIterationBatchNorm2d(RunningStatsNorm2d):
    """Batch normalization over the compensated statistics of the last ``window`` iterations.

    Buffers: ``past_mean``/``past_square`` ``(window - 1, C)`` (newest first), ``past_count`` (how
    many are filled) and, with ``conv_fan_in``, the compensation's ``past_mean_grad``/
    ``past_square_grad`` ``(window - 1, C, conv_fan_in)`` and ``past_mean_dot``/``past_square_dot``
    ``(window - 1, C)`` (the Jacobians and their products with the weights of their iteration).

    Args:
        num_features: C, the number of channels.
        window: k, iterations pooled (the paper's 8 for detection), current one included.
        burn_in: iterations before past statistics are used (the paper starts pooling late
            in training; 0 pools from the start).
        conv_fan_in: ``C_in / groups · kh · kw`` of the preceding bias-free convolution, to
            compensate for its weight changes (see the module); None: no compensation.
        eps: added to the variance.
        momentum: running-average momentum for eval mode (None: cumulative average).
        affine: add a per-channel ``weight`` and ``bias``.
        track_running_stats: keep running statistics for eval mode.
        device: buffer device.
        dtype: buffer dtype.

    Raises:
        ValueError: for ``window < 1``; for a ``conv`` context with a bias, of the wrong size, or
            without ``conv_fan_in``/``conv_input``.

    Example:
        >>> cbn = CrossIterationBatchNorm2d(8, window=4)
        >>> for _ in range(5):
        ...     y = cbn(torch.randn(2, 8, 4, 4))
        >>> int(cbn.past_count), y.shape
        (3, torch.Size([2, 8, 4, 4]))
        >>> conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        >>> compensated = CrossIterationBatchNorm2d(8, window=4, conv_fan_in=3 * 3 * 3)
        >>> h = torch.randn(2, 3, 4, 4)
        >>> compensated(conv(h), conv=conv, conv_input=h).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, num_features: int, *, window: int = 8, burn_in: int = 0,
                 conv_fan_in: int | None = None, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, mean_shape=(num_features,), var_shape=(num_features,), eps=eps,
                         momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         device=device, dtype=dtype)
        if window < 1:
            raise ValueError(f"CrossIterationBatchNorm2d: window must be at least 1, got {window}")
        self.window = window
        self.burn_in = burn_in
        self.conv_fan_in = conv_fan_in
        past = (window - 1, num_features)
        dots = ("past_mean_dot", "past_square_dot") if conv_fan_in else ()
        for name in ("past_mean", "past_square", *dots):
            self.register_buffer(name, torch.zeros(past, **dd(device, dtype)))
        for name in ("past_mean_grad", "past_square_grad") if conv_fan_in else ():
            self.register_buffer(name, torch.zeros(*past, conv_fan_in, **dd(device, dtype)))
        self.register_buffer("past_count", torch.zeros((), dtype=torch.long, device=device))

    def _past_names(self) -> tuple[str, ...]:
        extra = ("past_mean_dot", "past_square_dot", "past_mean_grad", "past_square_grad")
        return ("past_mean", "past_square") + (extra if self.conv_fan_in else ())

    def reset_running_stats(self) -> None:
        """Forget the running and the past statistics."""
        super().reset_running_stats()
        for name in self._past_names():
            getattr(self, name).zero_()
        self.past_count.zero_()

    def _jacobians(self, x: Tensor, conv: nn.Conv2d | None, conv_input: Tensor | None) -> dict[str, Tensor]:
        """``∂μ/∂θ``, ``∂ν/∂θ`` of this batch and their products with θ (empty without the context)."""
        if conv is None and conv_input is None:
            return {}
        name = type(self).__name__
        if conv is None or conv_input is None or self.conv_fan_in is None or conv.bias is not None:
            raise ValueError(f"{name}: the compensation needs conv= (the preceding bias-free nn.Conv2d), "
                             "conv_input= (its input) and conv_fan_in= at construction")
        weight = conv.weight.detach()
        if weight[0].numel() != self.conv_fan_in or weight.shape[0] != self.num_features:
            raise ValueError(f"{name}: conv weight {tuple(weight.shape)} does not match num_features="
                             f"{self.num_features}, conv_fan_in={self.conv_fan_in}")
        count = x.numel() // x.shape[1]
        opts = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation,
                "groups": conv.groups}
        y = x.detach()
        grads = {
            "mean": conv2d_weight(conv_input.detach(), weight.shape, torch.full_like(y, 1 / count), **opts),
            "square": conv2d_weight(conv_input.detach(), weight.shape, y * (2 / count), **opts),
        }
        flat = weight.flatten(1)
        out = {f"past_{k}_grad": g.flatten(1) for k, g in grads.items()}
        out.update({f"past_{k}_dot": (g.flatten(1) * flat).sum(1) for k, g in grads.items()})
        return {**out, "weight": flat}

    def _pooled(self, mean: Tensor, square: Tensor, jac: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Mean and variance pooled over this batch and the filled past slots; updates the slots."""
        slots = torch.arange(self.window - 1, device=mean.device)
        use = self.num_batches_tracked >= self.burn_in
        valid = ((slots < self.past_count) & use).to(mean.dtype)[:, None]  # (k-1, 1)
        past_mean, past_square = self.past_mean.to(mean.dtype), self.past_square.to(mean.dtype)
        if jac:  # Taylor compensation to the current weights: g·θ_t − g·θ_{t−τ}
            theta = jac["weight"].to(mean.dtype)
            past_mean = past_mean + (self.past_mean_grad * theta).sum(-1) - self.past_mean_dot
            past_square = past_square + (self.past_square_grad * theta).sum(-1) - self.past_square_dot
        total = 1 + valid.sum()
        pooled_mean = (mean + (valid * past_mean).sum(0)) / total
        pooled_square = (torch.maximum(square, mean.square())
                         + (valid * torch.maximum(past_square, past_mean.square())).sum(0)) / total
        if self.window > 1:
            new = {"past_mean": mean.detach(), "past_square": square.detach(), **jac}
            with torch.no_grad():
                for name in self._past_names():
                    past = getattr(self, name)
                    latest = new[name] if name in new else torch.zeros_like(past[0])
                    past.copy_(torch.cat([latest[None].to(past.dtype), past[:-1]]))
                self.past_count.copy_((self.past_count + 1).clamp_max(self.window - 1))
        return pooled_mean, (pooled_square - pooled_mean.square()).clamp_min(0)

    def forward(self, x: Tensor, conv: nn.Conv2d | None = None, conv_input: Tensor | None = None) -> Tensor:
        """Standardise ``x`` with the cross-iteration statistics (running ones in eval mode).

        ``conv``, ``conv_input``: the preceding convolution and its input (``x = conv(conv_input)``),
        for the compensation; training only (ignored in eval mode).
        """
        self._check_input(x)
        if self.use_batch_stats:
            mean = x.mean((0, 2, 3))
            square = x.square().mean((0, 2, 3))
            if self.training:
                mean, var = self._pooled(mean, square, self._jacobians(x, conv, conv_input))
            else:
                var = (square - mean.square()).clamp_min(0)
            self._track(mean, var, x.numel() // x.shape[1])
        else:
            mean, var = self.running_mean, self.running_var
        return self._affine((x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps))

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, window={self.window}, burn_in={self.burn_in}, "
                f"conv_fan_in={self.conv_fan_in}")
