"""Spectrally normalised convolutions, scaled at the cheaper end: the weight or the output.

``torch.nn.utils.spectral_norm`` divides the weight by its spectral norm σ before every call:
a pass over the weight forward and several backward (the division, its gradient and σ's
gradient). Convolution is linear in the weight, so ``conv(x, W/σ) + b = conv(x, W)/σ + b``
exactly; dividing the output instead costs passes over the output. The SPADE generators'
low-resolution layers have weights up to 36× larger than their outputs (1024×1024×3×3 against
1024×16×16 per sample), so :func:`spectral_conv` scales whichever is smaller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.spectral_norm import SpectralNorm

from condnorm.graph_mode import exporting_program

__all__ = ["spectral_conv", "spectral_sigma"]


def _spectral_hook(module: nn.Module) -> SpectralNorm | None:
    return next((h for h in module._forward_pre_hooks.values() if isinstance(h, SpectralNorm)), None)


def spectral_sigma(module: nn.Module, hook: SpectralNorm) -> Tensor:
    """σ = uᵀ W v of a module with the spectral-norm hook, as the hook computes it.

    In training mode the power iteration first updates the ``u``, ``v`` buffers in place,
    exactly as the hook would have; σ carries the gradient to ``weight_orig``.
    """
    weight = getattr(module, hook.name + "_orig")
    u, v = getattr(module, hook.name + "_u"), getattr(module, hook.name + "_v")
    matrix = hook.reshape_weight_to_matrix(weight)
    if module.training and hook.n_power_iterations > 0:
        with torch.no_grad():
            for _ in range(hook.n_power_iterations):
                v = F.normalize(torch.mv(matrix.t(), u), dim=0, eps=hook.eps, out=v)
                u = F.normalize(torch.mv(matrix, v), dim=0, eps=hook.eps, out=u)
            u, v = (t.clone(memory_format=torch.contiguous_format) for t in (u, v))
    return torch.dot(u, torch.mv(matrix, v))


def spectral_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(x)``, with a spectral-norm hook's 1/σ applied to the output when the output is smaller.

    Equal to ``conv(x)`` up to float rounding, gradients and ``u``/``v`` updates included.
    Convolutions without the hook, and calls while tracing or exporting, run ``conv(x)``.
    (``conv.weight`` then keeps the value of the last hooked call; nothing reads it between
    calls.)

    Args:
        conv: a 2-D convolution, optionally with :func:`torch.nn.utils.spectral_norm`.
        x: ``(N, C_in, H, W)``.

    Returns:
        ``(N, C_out, H', W')``.

    Example:
        >>> conv = nn.utils.spectral_norm(nn.Conv2d(64, 64, 3, padding=1)).double().eval()  # no power iteration
        >>> x = torch.randn(1, 64, 2, 2, dtype=torch.float64)  # 256 outputs against 36,864 weights
        >>> torch.allclose(spectral_conv(conv, x), conv(x), atol=1e-10)
        True
    """
    hook = _spectral_hook(conv)
    if hook is None or exporting_program():
        return conv(x)
    weight = getattr(conv, hook.name + "_orig")
    if x.shape[0] * conv.out_channels * x.shape[-2] * x.shape[-1] >= weight.numel():
        return conv(x)
    out = conv._conv_forward(x, weight, None) / spectral_sigma(conv, hook)
    return out if conv.bias is None else out + conv.bias.view(-1, 1, 1)
