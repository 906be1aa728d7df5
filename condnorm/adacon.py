"""AdaCoN: adaptive convolution-based normalization (arXiv 1911.13271), a per-sample dynamic conv."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .graph_mode import exporting_onnx

__all__ = ["AdaCoN", "AdaptiveConvNorm2d"]


def _local_standardize(x: Tensor, window: int, eps: float) -> Tensor:
    """Standardise each channel by the mean and variance of its ``window²`` neighbourhood."""
    pad = window // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(padded, window, stride=1)
    var = (F.avg_pool2d(padded.square(), window, stride=1) - mean.square()).clamp_min(0.0)
    return (x - mean) * torch.rsqrt(var + eps)


@torch.jit.script_if_tracing  # scripted under tracing, so the batch-sized `groups` stays dynamic
def _dynamic_conv(x: Tensor, depthwise: Tensor, pointwise: Tensor, bias: Tensor, groups: int) -> Tensor:
    """Per-sample depthwise k×k conv (reflect pad), then grouped 1×1 conv plus bias, in two convs.

    The batch is folded into the channels, ``(1, N·C, H, W)``, so sample ``n``'s kernels act
    only on its own channels (``groups = N·C`` then ``N·G``): no loop over the batch.
    """
    n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    k = depthwise.shape[-1]
    flat = x.reshape(1, n * c, h, w)
    if k > 1:
        flat = F.pad(flat, [k // 2, k // 2, k // 2, k // 2], mode="reflect")
    out = F.conv2d(flat, depthwise.reshape(n * c, 1, k, k), groups=n * c)
    out = F.conv2d(out, pointwise.reshape(n * c, c // groups, 1, 1), bias.reshape(n * c), groups=n * groups)
    return out.reshape(n, c, h, w)


def _dynamic_conv_unfolded(x: Tensor, depthwise: Tensor, pointwise: Tensor, bias: Tensor,
                           groups: int) -> Tensor:
    """:func:`_dynamic_conv` without batch-sized conv groups: the form the ONNX exporters get.

    ONNX's ``Conv`` takes ``group`` as a constant attribute, so folding the batch into the
    channels would freeze the batch size. Here the depthwise conv is a sum of ``k²`` shifted
    copies of the padded map and the grouped pointwise conv a batched matmul; the result
    equals :func:`_dynamic_conv` up to float rounding.
    """
    n, c, h, w = x.shape
    k = depthwise.shape[-1]
    padded = F.pad(x, [k // 2] * 4, mode="reflect") if k > 1 else x
    out = x.new_zeros(())
    for i in range(k):
        for j in range(k):
            out = out + padded[:, :, i:i + h, j:j + w] * depthwise[:, :, i, j, None, None]
    per = c // groups
    out = torch.matmul(pointwise.reshape(n, groups, per, per), out.reshape(n, groups, per, h * w))
    return out.reshape(n, c, h, w) + bias[:, :, None, None]


class AdaptiveConvNorm2d(nn.Module):
    r"""Standardise each channel, then convolve with kernels predicted from a style code.

    .. math::
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad
        \mathrm{out} = P(s) * \big(D(s) * \hat x\big) + b(s)

    ``μ, σ²`` are per-channel statistics over the whole map (``local_window=None``, instance
    standardisation) or over a ``k×k`` reflect-padded neighbourhood (the paper's local
    standardisation). An MLP on the style code ``s`` predicts, per sample, a depthwise
    ``k×k`` kernel ``D`` ``(C, 1, k, k)`` (reflect padding), a grouped pointwise kernel ``P``
    ``(C, C/G, 1, 1)`` and a bias ``b`` ``(C)``, as in AdaConv's kernel predictor (Chandran et
    al., 2021). With ``kernel_size=1`` and ``groups=num_features`` it reduces to AdaIN with a
    style vector: ``out = \hat x\,P D + b``.

    The MLP's last layer is zero-initialised and constant offsets are added to its output (a
    delta depthwise kernel, an identity pointwise kernel, a zero bias), so the layer is the
    pure standardisation at init. The spec follows the paper's abstract; no official code
    exists (see ``shared/reference/adain-adacon.md`` §4).

    Args:
        num_features: C, channels of ``x``.
        style_dim: D, size of the style code.
        kernel_size: k of the depthwise kernel (odd).
        groups: G of the pointwise conv, dividing C; default C (a per-channel scale).
        local_window: odd window of the local standardisation; None standardises globally.
        hidden: width of the MLP's hidden layer (ReLU); None makes the MLP one linear layer.
        eps: added to the variance.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, H, W)``, with H, W larger than half the kernel and the window
        - style: ``(N, D)``
        - output: ``(N, C, H, W)``

    Raises:
        ValueError: for an even ``kernel_size``/``local_window``, or ``groups`` not dividing C.

    Example:
        >>> layer = AdaptiveConvNorm2d(16, style_dim=8, groups=4, local_window=5, hidden=32)
        >>> layer(torch.randn(2, 16, 12, 12), torch.randn(2, 8)).shape
        torch.Size([2, 16, 12, 12])
    """

    def __init__(
        self,
        num_features: int,
        style_dim: int,
        *,
        kernel_size: int = 3,
        groups: int | None = None,
        local_window: int | None = None,
        hidden: int | None = None,
        eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        groups = num_features if groups is None else groups
        if kernel_size < 1 or kernel_size % 2 != 1:
            raise ValueError(f"AdaCoN: kernel_size must be a positive odd integer, got {kernel_size}")
        if local_window is not None and (local_window < 3 or local_window % 2 != 1):
            raise ValueError(f"AdaCoN: local_window must be an odd integer >= 3 or None, got {local_window}")
        if groups < 1 or num_features % groups:
            raise ValueError(f"AdaCoN: groups={groups} must divide num_features={num_features}")
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.style_dim = style_dim
        self.kernel_size = kernel_size
        self.groups = groups
        self.local_window = local_window
        self.eps = eps
        c, per_group = num_features, num_features // groups
        self._sizes = [c * kernel_size**2, c * per_group, c]
        layers: list[nn.Module] = []
        if hidden is not None:
            layers += [nn.Linear(style_dim, hidden, **dd), nn.ReLU()]
        layers.append(nn.Linear(style_dim if hidden is None else hidden, sum(self._sizes), **dd))
        self.mlp = nn.Sequential(*layers)
        delta = torch.zeros(c, kernel_size, kernel_size, **dd)
        delta[:, kernel_size // 2, kernel_size // 2] = 1.0
        identity = torch.eye(per_group, **dd).repeat(groups, 1)  # (C, C/G): output o reads input o % (C/G)
        offset = torch.cat([delta.flatten(), identity.flatten(), torch.zeros(c, **dd)])
        self.register_buffer("offset", offset, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the MLP's last layer, so the kernels are the delta/identity offsets at init."""
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def predict(self, style: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return the per-sample kernels for ``style`` ``(N, D)``.

        Returns:
            ``depthwise (N, C, k, k)``, ``pointwise (N, C, C/G)``, ``bias (N, C)``.
        """
        depthwise, pointwise, bias = (self.mlp(style) + self.offset).split(self._sizes, dim=1)
        c, k = self.num_features, self.kernel_size
        return depthwise.unflatten(1, (c, k, k)), pointwise.unflatten(1, (c, c // self.groups)), bias

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """Standardise ``x``, then apply the kernels predicted from ``style``."""
        sizes = check_shape(x, ("N", "C", "H", "W"), "AdaCoN x", {"C": self.num_features})
        check_shape(style, ("N", "D"), "AdaCoN style", {"N": sizes["N"], "D": self.style_dim})
        check_finite(style, "AdaCoN style")
        reach = max(self.kernel_size, self.local_window or 1) // 2
        if reach >= min(sizes["H"], sizes["W"]):
            raise ValueError(f"AdaCoN x: spatial size {sizes['H']}x{sizes['W']} is too small for reflect "
                             f"padding of {reach}; each side must exceed it")
        if self.local_window is None:
            normalized = F.instance_norm(x, eps=self.eps)
        else:
            normalized = _local_standardize(x, self.local_window, self.eps)
        conv = _dynamic_conv_unfolded if exporting_onnx() else _dynamic_conv
        return conv(normalized, *self.predict(style), self.groups)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, style_dim={self.style_dim}, kernel_size={self.kernel_size}, "
                f"groups={self.groups}, local_window={self.local_window}")


AdaCoN = AdaptiveConvNorm2d
