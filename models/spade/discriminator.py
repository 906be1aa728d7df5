"""SPADE's multiscale PatchGAN discriminator (pix2pixHD form) with the official parameter names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from condnorm import make_norm
from condnorm._check import check_shape
from condnorm.norm import NormSpec

from .blocks import maybe_spectral_norm, xavier_init_

__all__ = ["MultiscaleDiscriminator", "NLayerDiscriminator"]


class NLayerDiscriminator(nn.Module):
    r"""One scale of the PatchGAN discriminator; returns every layer's output.

    ``model0`` = conv(4×4, stride 2) + LeakyReLU(0.2); ``model1 … model{n-1}`` = conv(4×4) +
    parameter-free norm + LeakyReLU(0.2), widths doubling up to 512, stride 2 except the last
    (stride 1); ``model{n}`` = conv(4×4, stride 1) → 1 channel of patch logits. All convs pad 2.
    Spectral norm and the norm are on the middle layers only, whose convs drop their bias
    (kept with ``norm="none"``). Keys: ``model0.0.*``, ``model{1..n-1}.0.0.weight_{orig,u,v}``,
    ``model{n}.0.*``, as in the official checkpoints.

    Args:
        input_nc: input channels (segmap channels + 3 for the image).
        n_layers: number of downsampling stages (official ``n_layers_D``).
        ndf: width of the first layer.
        spectral: spectral normalisation on the middle convs.
        norm: parameter-free normalizer of the middle layers (see :func:`condnorm.make_norm`).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - input: ``(N, input_nc, H, W)``
        - output: a list of ``n_layers + 1`` maps; the last, ``(N, 1, H', W')``, holds the logits

    Example:
        >>> d = NLayerDiscriminator(5, n_layers=3, ndf=4)
        >>> [tuple(f.shape) for f in d(torch.randn(1, 5, 32, 32))]
        [(1, 4, 17, 17), (1, 8, 9, 9), (1, 16, 10, 10), (1, 1, 11, 11)]
    """

    def __init__(
        self,
        input_nc: int,
        *,
        n_layers: int = 4,
        ndf: int = 64,
        spectral: bool = True,
        norm: NormSpec = "instance",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"NLayerDiscriminator: n_layers must be >= 1, got {n_layers}")
        dd = {"device": device, "dtype": dtype}
        self.input_nc = input_nc
        self.model0 = nn.Sequential(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=2, **dd), nn.LeakyReLU(0.2))
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            normalizer = make_norm(norm, nf, **dd)
            conv = nn.Conv2d(nf_prev, nf, 4, stride=1 if n == n_layers - 1 else 2, padding=2,
                             bias=isinstance(normalizer, nn.Identity), **dd)
            layer = nn.Sequential(maybe_spectral_norm(conv, spectral), normalizer)
            self.add_module(f"model{n}", nn.Sequential(layer, nn.LeakyReLU(0.2)))
        self.add_module(f"model{n_layers}", nn.Sequential(nn.Conv2d(nf, 1, 4, stride=1, padding=2, **dd)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official xavier-normal(0.02) init, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                xavier_init_(module)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Every layer's output, the patch logits last."""
        check_shape(x, ("N", self.input_nc, "H", "W"), "NLayerDiscriminator input")
        features = []
        for layer in self.children():
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    r"""``num_D`` PatchGAN discriminators on the input downsampled ×2 between scales.

    Scale ``i`` (``discriminator_{i}``, an :class:`NLayerDiscriminator`) sees the input after
    ``i`` average-poolings (3×3, stride 2, padding 1, padding excluded from the mean). The input is
    the segmap concatenated with the (real or fake) image along channels; run real and fake in
    one batch to share the pass.

    Args:
        input_nc: input channels (segmap channels + 3).
        num_D: number of scales.
        n_layers: downsampling stages per scale.
        ndf: width of the first layer.
        spectral: spectral normalisation on the middle convs.
        norm: parameter-free normalizer of the middle layers.
        get_intermediate_features: return every layer's output per scale (needed for the
            feature-matching loss); else each scale's list holds only its logits.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - input: ``(N, input_nc, H, W)``
        - output: ``num_D`` lists (one per scale, finest first) of feature maps; the last
          element of each list is that scale's logits ``(N, 1, H_i', W_i')``

    Example:
        >>> d = MultiscaleDiscriminator(5, num_D=2, n_layers=2, ndf=4)
        >>> out = d(torch.randn(1, 5, 32, 32))
        >>> [len(scale) for scale in out], tuple(out[1][-1].shape)
        ([3, 3], (1, 1, 11, 11))
    """

    def __init__(
        self,
        input_nc: int,
        *,
        num_D: int = 2,
        n_layers: int = 4,
        ndf: int = 64,
        spectral: bool = True,
        norm: NormSpec = "instance",
        get_intermediate_features: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_D < 1:
            raise ValueError(f"MultiscaleDiscriminator: num_D must be >= 1, got {num_D}")
        self.num_D = num_D
        self.get_intermediate_features = get_intermediate_features
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", NLayerDiscriminator(
                input_nc, n_layers=n_layers, ndf=ndf, spectral=spectral, norm=norm,
                device=device, dtype=dtype))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        """Per-scale lists of features, finest scale first; each list ends with the logits."""
        results = []
        for i, disc in enumerate(self.children()):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            features = disc(x)
            results.append(features if self.get_intermediate_features else features[-1:])
        return results
