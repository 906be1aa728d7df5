"""StyleGAN2's modulated convolution with weight demodulation (Karras et al., CVPR 2020)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .functional import modulated_conv2d
from .graph_mode import exporting_onnx, exporting_program

__all__ = ["EqualLinear", "ModulatedConv2d"]

_STYLEGAN2_EXTRA = ("resample_filter", "noise_const", "noise_strength")


class EqualLinear(nn.Module):
    r"""StyleGAN's equalized-learning-rate linear layer: ``W`` stored ``N(0, 1)``, scaled at run time.

    .. math::
        y = x\,(W \cdot g)^\top + b, \qquad g = \frac{\mathrm{lr}}{\sqrt{\mathrm{in}}}

    Same keys and semantics as StyleGAN2/3's ``FullyConnectedLayer`` (linear activation): ``weight``
    ``(out, in)``, ``bias`` ``(out,)`` initialised to ``bias_init``.

    Example:
        >>> EqualLinear(8, 4, bias_init=1.0)(torch.zeros(2, 8))
        tensor([[1., 1., 1., 1.],
                [1., 1., 1., 1.]], grad_fn=<AddmmBackward0>)
    """

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.randn(out_features, in_features, **dd) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init), **dd))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        """``x @ (W g)ᵀ + b · lr``."""
        return torch.addmm(self.bias.to(x.dtype) * self.lr_multiplier, x, (self.weight.to(x.dtype)
                                                                          * self.weight_gain).t())

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class ModulatedConv2d(nn.Module):
    r"""A convolution whose weights are scaled per sample by a style vector, then demodulated.

    .. math::
        s = A(w), \quad w'_{n,o,i,k} = s_{n,i}\,W_{o,i,k}, \quad
        y_n = \frac{w'_n}{\sqrt{\sum_{i,k} w'^2_{n,o,i,k} + 10^{-8}}} * x_n + b

    ``affine`` (:class:`EqualLinear`, bias initialised to 1) maps the style ``w`` to one scale per
    input channel; the batch runs as one convolution with the shared weight (the activation form;
    ``grouped=True`` for StyleGAN2's grouped form, see :func:`condnorm.functional.modulated_conv2d`,
    which also describes ``up=2``). Keys and init
    are StyleGAN2/3's ``SynthesisLayer``/``ToRGBLayer``: ``affine.weight`` ``(I, w_dim)``,
    ``affine.bias``, ``weight`` ``(O, I, k, k)`` ``N(0, 1)``, ``bias`` ``(O,)`` zeros. The
    equalized-lr gain ``1/√(I k²)`` of the conv weight cancels under demodulation; without it
    (``demodulate=False``, toRGB) it scales the styles, as StyleGAN2 does. A toRGB state dict
    loads directly with ``strict=True``; a ``SynthesisLayer``'s through
    :meth:`from_stylegan2_state_dict`, which sets aside its noise and filter buffers: noise and
    the activation (``lrelu`` with gain √2 in StyleGAN2) are the caller's, applied after this layer
    (the bias is added here, before them, as ``bias_act`` does).

    Args:
        num_features: I, input channels.
        style_dim: size of the style vector ``w``.
        out_channels: O, output channels (default I).
        kernel_size: odd kernel size (3; 1 for toRGB).
        demodulate: demodulate the weights (StyleGAN2's synthesis layers; not toRGB).
        up: 1, or 2 for StyleGAN2's upsampling conv (3×3 kernels only).
        down: 1, or 2 for its downsampling conv (low-pass, then stride 2; 3×3 kernels only).
        grouped: run StyleGAN2's grouped form (per-sample weights, ``groups = N``) in eager mode
            instead of the activation form; both are exact, exports always use the activation form.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, I, H, W)``
        - style: ``(N, style_dim)``
        - output: ``(N, O, H·up/down, W·up/down)``

    Example:
        >>> layer = ModulatedConv2d(16, out_channels=32, style_dim=64)
        >>> layer(torch.randn(4, 16, 8, 8), torch.randn(4, 64)).shape
        torch.Size([4, 32, 8, 8])
        >>> ModulatedConv2d(16, out_channels=8, style_dim=64, up=2)(torch.randn(4, 16, 8, 8),
        ...                                                       torch.randn(4, 64)).shape
        torch.Size([4, 8, 16, 16])
    """

    def __init__(
        self,
        num_features: int,
        style_dim: int,
        *,
        out_channels: int | None = None,
        kernel_size: int = 3,
        demodulate: bool = True,
        up: int = 1,
        down: int = 1,
        grouped: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ModulatedConv2d: kernel_size must be odd, got {kernel_size}")
        if (up, down) not in ((1, 1), (2, 1), (1, 2)) or (up * down > 1 and kernel_size != 3):
            raise ValueError(f"ModulatedConv2d: up/down must be 1, or one of them 2 with kernel_size=3, got "
                             f"up={up}, down={down}, kernel_size={kernel_size}")
        dd = {"device": device, "dtype": dtype}
        out_channels = out_channels or num_features
        self.num_features = num_features
        self.out_channels = out_channels
        self.style_dim = style_dim
        self.demodulate = demodulate
        self.up = up
        self.down = down
        self.grouped = grouped
        self.affine = EqualLinear(style_dim, num_features, bias_init=1.0, **dd)
        self.weight = nn.Parameter(torch.randn(out_channels, num_features, kernel_size, kernel_size, **dd))
        self.bias = nn.Parameter(torch.zeros(out_channels, **dd))
        self.weight_gain = 1.0 / math.sqrt(num_features * kernel_size * kernel_size)

    @classmethod
    def from_stylegan2_state_dict(cls, state_dict: dict[str, Tensor], *, demodulate: bool = True,
                                  **kw: Any) -> ModulatedConv2d:
        """Build the layer from a StyleGAN2/3 ``SynthesisLayer``/``ToRGBLayer`` state dict (strict load).

        Shapes come from ``weight`` and ``affine.weight``; ``resample_filter``, ``noise_const`` and
        ``noise_strength`` are not this layer's (see the class docstring) and are left out.

        Example:
            >>> sd = ModulatedConv2d(4, out_channels=6, style_dim=8).state_dict()
            >>> layer = ModulatedConv2d.from_stylegan2_state_dict({**sd, "noise_strength": torch.zeros([])})
            >>> layer.extra_repr()
            '4, out_channels=6, style_dim=8, kernel_size=3, demodulate=True, up=1, down=1'
        """
        out_ch, in_ch, k, _ = state_dict["weight"].shape
        layer = cls(in_ch, state_dict["affine.weight"].shape[1], out_channels=out_ch, kernel_size=k,
                    demodulate=demodulate, **kw)
        layer.load_state_dict({k: v for k, v in state_dict.items() if k not in _STYLEGAN2_EXTRA}, strict=True)
        return layer

    def styles(self, style: Tensor) -> Tensor:
        """The per-sample input-channel scales ``(N, I)`` (times the weight gain without demodulation)."""
        styles = self.affine(style)
        return styles if self.demodulate else styles * self.weight_gain

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """Convolve each sample with its own modulated (and demodulated) weights, then add the bias."""
        name = type(self).__name__
        sizes = check_shape(x, ("N", "I", "H", "W"), f"{name} x", {"I": self.num_features})
        check_shape(style, ("N", "D"), f"{name} style", {"N": sizes["N"], "D": self.style_dim})
        check_finite(style, f"{name} style")
        out = modulated_conv2d(x, self.weight.to(x.dtype), self.styles(style).to(x.dtype),
                               demodulate=self.demodulate, up=self.up, down=self.down,
                               grouped=self.grouped and not (exporting_program() or exporting_onnx()))
        return out + self.bias.to(out.dtype)[:, None, None]

    def extra_repr(self) -> str:
        return (f"{self.num_features}, out_channels={self.out_channels}, style_dim={self.style_dim}, "
                f"kernel_size={self.weight.shape[-1]}, demodulate={self.demodulate}, up={self.up}, "
                f"down={self.down}")


