r"""Split / Domain-Specific Batch Normalization: separate batch statistics per group of samples.

Split BN (Zając et al., 2019) standardises the labelled and the unlabelled part of a batch with
their own statistics; Domain-Specific BN (Chang et al., CVPR 2019) keeps one batch norm per
domain (source, target). Both are one layer: each sample carries a domain id ``d_n`` and

.. math::
    \mu_d = \mathrm{E}_{n: d_n = d,\, h, w}[x],\quad
    \sigma^2_d = \mathrm{Var}_{n: d_n = d,\, h, w}[x],\quad
    y_n = \frac{x_n - \mu_{d_n}}{\sqrt{\sigma^2_{d_n} + \epsilon}}

with running statistics per domain (``running_mean``/``running_var`` ``(D, C)``,
``num_batches_tracked`` ``(D,)``) for eval mode. A domain absent from a batch keeps its running
statistics. The statistics are weighted sums over a one-hot of the ids (no boolean indexing),
so the layer compiles and exports with a dynamic batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._check import check_ids, check_shape
from ._base import RunningStatsNorm2d

__all__ = ["DomainSpecificBatchNorm2d"]


class DomainSpecificBatchNorm2d(RunningStatsNorm2d):
    """Batch normalization with one set of statistics per domain (Split BN, DSBN).

    Args:
        num_features: C, the number of channels.
        num_domains: D, the number of domains (2: Split BN's labelled/unlabelled, DSBN's source/target).
        eps: added to the variance.
        momentum: running-average momentum (None: cumulative average).
        affine: add a per-channel ``weight`` and ``bias`` shared by the domains (DSBN keeps one per
            domain; under a conditional layer there is none).
        track_running_stats: keep per-domain running statistics for eval mode.
        device: buffer device.
        dtype: buffer dtype.

    Shape:
        - x: ``(N, C, H, W)``; domain: ``(N,)`` integer ids in ``[0, D)``; output: ``(N, C, H, W)``.

    Raises:
        ValueError: without ``domain``, for ids out of range or a wrong shape.
        TypeError: for floating-point ids.

    Example:
        >>> dsbn = DomainSpecificBatchNorm2d(8, num_domains=2)
        >>> dsbn(torch.randn(4, 8, 5, 5), domain=torch.tensor([0, 0, 1, 1])).shape
        torch.Size([4, 8, 5, 5])
        >>> dsbn.num_batches_tracked.tolist()
        [1, 1]
    """

    def __init__(self, num_features: int, *, num_domains: int = 2, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = False, track_running_stats: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, mean_shape=(num_domains, num_features),
                         var_shape=(num_domains, num_features), eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats, device=device, dtype=dtype)
        self.num_domains = num_domains

    def forward(self, x: Tensor, domain: Tensor | None = None) -> Tensor:
        """Standardise each sample with its domain's statistics (``domain``: the context)."""
        self._check_input(x)
        if domain is None:
            raise ValueError(f"{type(self).__name__}: needs domain= (N,) ids in [0, {self.num_domains}); "
                             "pass it to the conditional layer as a keyword (layer(x, cond, domain=d))")
        check_shape(domain, ("N",), f"{type(self).__name__} domain", {"N": x.shape[0]})
        check_ids(domain, self.num_domains, f"{type(self).__name__} domain")
        if not self.use_batch_stats:
            mean, var = self.running_mean[domain], self.running_var[domain]
        else:
            onehot = F.one_hot(domain, self.num_domains).to(x.dtype)  # (N, D)
            count = onehot.sum(0)  # samples per domain
            per = count.clamp_min(1)[:, None] * (x.shape[2] * x.shape[3])
            mean_d = onehot.t() @ x.sum((2, 3)) / per  # (D, C)
            centred = (x - (onehot @ mean_d)[:, :, None, None]).square().sum((2, 3))
            var_d = onehot.t() @ centred / per
            self._track(mean_d, var_d, per, present=count > 0)
            mean, var = onehot @ mean_d, onehot @ var_d
        return self._affine((x - mean[:, :, None, None]) * torch.rsqrt(var[:, :, None, None] + self.eps))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_domains={self.num_domains}"
