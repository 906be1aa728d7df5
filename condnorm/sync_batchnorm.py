r"""Batch normalization with statistics synchronised across processes, on GPUs and on CPUs.

``torch.nn.SyncBatchNorm`` only synchronises CUDA (and similar accelerator) tensors: on the
CPU it raises inside a process group, and ``DistributedDataParallel`` refuses to wrap a CPU
model that contains one. :class:`SyncBatchNorm2d` is a ``BatchNorm2d`` that synchronises
itself in training whenever ``torch.distributed`` is initialised with more than one process:
accelerator tensors go through PyTorch's fused synchronised kernel (what ``nn.SyncBatchNorm``
runs), CPU tensors (the ``gloo`` backend) through two differentiable all-reduces,

.. math::
    \mu = \frac{\sum_r \sum_{i \in r} x_i}{\sum_r n_r}, \qquad
    \sigma^2 = \frac{\sum_r \sum_{i \in r} (x_i - \mu)^2}{\sum_r n_r},

whose backward all-reduces the gradients, so each process gets the gradient of the batch
over all processes. Outside a process group, or in eval mode, it is ``BatchNorm2d``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules._functions import SyncBatchNorm as _FusedSyncBatchNorm

from ._check import check_shape
from .autograd import AllReduceSum

__all__ = ["SyncBatchNorm2d", "sync_batch_norm"]


def sync_batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None,
                    bias: Tensor | None, *, momentum: float, eps: float, group: Any = None) -> Tensor:
    """Training-mode batch norm of ``x`` with statistics over every process of ``group``.

    Works on any device and backend (two all-reduces of ``C + 1`` and ``C`` values); the
    running statistics are updated in place with the unbiased variance, as ``BatchNorm2d`` does.

    Args:
        x: this process's part of the batch ``(N, C, *)``.
        running_mean: ``(C,)`` updated in place, or None.
        running_var: ``(C,)`` updated in place, or None.
        weight: affine scale ``(C,)`` or None.
        bias: affine shift ``(C,)`` or None.
        momentum: weight of the new statistics in the running averages.
        eps: added to the variance.
        group: the process group (default: the world).

    Returns:
        The normalised ``x``.
    """
    dims = [0, *range(2, x.dim())]
    view = (1, -1) + (1,) * (x.dim() - 2)
    stats_dtype = torch.promote_types(x.dtype, torch.float32)
    xs = x.to(stats_dtype)
    local = torch.cat([xs.sum(dims), xs.new_full((1,), x.numel() // x.shape[1])])
    summed = AllReduceSum.apply(local, group)
    count = summed[-1]
    mean = summed[:-1] / count
    centred = xs - mean.view(view)
    var = AllReduceSum.apply(centred.square().sum(dims), group) / count
    out = centred * torch.rsqrt(var + eps).view(view)
    if weight is not None:
        out = out * weight.view(view)
    if bias is not None:
        out = out + bias.view(view)
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.lerp_(mean.to(running_mean.dtype), momentum)
            unbiased = var * (count / (count - 1).clamp(min=1))
            running_var.lerp_(unbiased.to(running_var.dtype), momentum)
    return out.to(x.dtype)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics span every process of a DDP run (GPU or CPU).

    What :func:`condnorm.make_norm` builds for ``"syncbatch"``. Being a ``BatchNorm2d`` (not an
    ``nn.SyncBatchNorm``), it passes ``DistributedDataParallel``'s CPU check, exports and
    recalibrates like ``BatchNorm2d``, and needs no conversion for single-process runs.

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: running-average factor (``None``: cumulative average).
        affine: learnable scale and shift.
        track_running_stats: keep running statistics.
        process_group: synchronise over this group (default: the world).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H, W)``

    Example:
        >>> bn = SyncBatchNorm2d(8, affine=False)
        >>> bn(torch.randn(4, 8, 5, 5)).shape  # no process group: plain batch norm
        torch.Size([4, 8, 5, 5])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group: Any = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group

    def _world_size(self) -> int:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return 1
        return dist.get_world_size(self.process_group)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` with statistics over all processes (training in a group) or locally."""
        world_size = self._world_size()
        if world_size == 1:
            return super().forward(x)
        check_shape(x, ("N", "C", "H", "W"), "SyncBatchNorm2d x", {"C": self.num_features})
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        running_mean = self.running_mean if self.track_running_stats else None
        running_var = self.running_var if self.track_running_stats else None
        if x.device.type == "cpu":
            return sync_batch_norm(x, running_mean, running_var, self.weight, self.bias, momentum=factor,
                                   eps=self.eps, group=self.process_group)
        group = self.process_group or dist.group.WORLD
        return _FusedSyncBatchNorm.apply(x, self.weight, self.bias, running_mean, running_var, self.eps,
                                         factor, group, world_size)

