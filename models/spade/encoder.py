"""The SPADE VAE image encoder (``ConvEncoder``) and the reparameterisation trick."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from condnorm import make_norm
from condnorm._check import check_shape
from condnorm.norm import NormSpec

from .blocks import maybe_spectral_norm, xavier_init_

__all__ = ["ConvEncoder", "reparameterize"]


class ConvEncoder(nn.Module):
    r"""Image encoder of SPADE's VAE mode: predicts the mean and log-variance of the style code.

    The image is resized (bilinear) to ``input_size × input_size``, then goes through stride-2
    3×3 convs ``layer1, layer2, …`` (widths ``ngf·min(2**i, 8)``), each spectrally normalised,
    followed by a parameter-free instance norm and LeakyReLU(0.2), down to a 4×4 map, which
    ``fc_mu`` and ``fc_var`` project to ``z_dim``. With the official ``input_size=256`` there are
    six layers and the keys are those of the official checkpoints (``layer{1..6}.0.weight_{orig,u,v}``,
    ``fc_mu.*``, ``fc_var.*``). The official code builds five layers when ``crop_size < 256``,
    which does not fit its 4×4 ``fc``; here the layer count always follows ``input_size``.
    Convs followed by a norm have no bias (as officially); with ``norm="none"`` they keep one.

    Args:
        ngf: base width.
        z_dim: size of the style code.
        input_size: side the image is resized to; a power of two ≥ 8.
        spectral: spectral normalisation on the convs.
        norm: parameter-free normalizer after each conv (see :func:`condnorm.make_norm`).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - image: ``(N, 3, H, W)`` in ``[-1, 1]``, any size
        - output: ``mu`` and ``logvar``, each ``(N, z_dim)``

    Example:
        >>> enc = ConvEncoder(ngf=4, z_dim=8, input_size=32)
        >>> mu, logvar = enc(torch.randn(2, 3, 48, 40))
        >>> mu.shape, logvar.shape
        (torch.Size([2, 8]), torch.Size([2, 8]))
    """

    def __init__(
        self,
        *,
        ngf: int = 64,
        z_dim: int = 256,
        input_size: int = 256,
        spectral: bool = True,
        norm: NormSpec = "instance",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if input_size < 8 or input_size & (input_size - 1):
            raise ValueError(f"ConvEncoder: input_size must be a power of two >= 8, got {input_size}")
        dd = {"device": device, "dtype": dtype}
        self.input_size, self.z_dim = input_size, z_dim
        num_layers = int(math.log2(input_size)) - 2
        self._layer_names = tuple(f"layer{i + 1}" for i in range(num_layers))
        fin = 3
        for i, name in enumerate(self._layer_names):
            fout = ngf * min(2**i, 8)
            normalizer = make_norm(norm, fout, **dd)
            conv = nn.Conv2d(fin, fout, 3, stride=2, padding=1,
                             bias=isinstance(normalizer, nn.Identity), **dd)
            self.add_module(name, nn.Sequential(maybe_spectral_norm(conv, spectral), normalizer))
            fin = fout
        self.fc_mu = nn.Linear(fin * 16, z_dim, **dd)
        self.fc_var = nn.Linear(fin * 16, z_dim, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official xavier-normal(0.02) init, zero biases."""
        for name in self._layer_names:
            xavier_init_(getattr(self, name)[0])
        xavier_init_(self.fc_mu)
        xavier_init_(self.fc_var)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(mu, logvar)`` of the style code of ``image``."""
        sizes = check_shape(image, ("N", 3, "H", "W"), "ConvEncoder image")
        if (sizes["H"], sizes["W"]) != (self.input_size, self.input_size):
            image = F.interpolate(image, size=(self.input_size, self.input_size), mode="bilinear",
                                  align_corners=False)
        x = image
        for name in self._layer_names:
            x = F.leaky_relu(getattr(self, name)(x), 0.2)
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: Tensor, logvar: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Draw :math:`z = \mu + \epsilon\,e^{\frac{1}{2}\log\sigma^2}`, :math:`\epsilon \sim N(0, I)`.

    Args:
        mu: mean ``(N, Z)``.
        logvar: log-variance ``(N, Z)``.
        generator: random generator for :math:`\epsilon`.

    Returns:
        A sample ``(N, Z)``, differentiable with respect to ``mu`` and ``logvar``.

    Example:
        >>> reparameterize(torch.zeros(2, 8), torch.zeros(2, 8)).shape
        torch.Size([2, 8])
    """
    sizes = check_shape(mu, ("N", "Z"), "reparameterize mu")
    check_shape(logvar, ("N", "Z"), "reparameterize logvar", sizes)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return torch.addcmul(mu, eps, torch.exp(0.5 * logvar))
