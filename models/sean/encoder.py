"""SEAN's style encoder: an image → a per-pixel style map → one style code per semantic region."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from condnorm._check import check_shape
from condnorm.functional import region_average_pool, resize_segmap

__all__ = ["StyleEncoder"]


class StyleEncoder(nn.Module):
    r"""Encode an image into per-region style codes (SEAN's ``Zencoder``, Zhu et al. 2020).

    A small conv net maps the image to a ``style_dim``-channel map at half resolution; the
    code of region ``l`` is that map's mean over the region's pixels (region-wise average
    pooling, :func:`condnorm.functional.region_average_pool`):

    .. math::
        c_{n,l} = \frac{\sum_{h,w} m_{n,l,h,w}\, F(x_n)_{:,h,w}}{\sum_{h,w} m_{n,l,h,w}}

    with ``m`` the segmap resized (nearest) to the style map's size. A region with no pixel at
    that size gets the zero code (as in SEAN) and is reported absent by :meth:`encode_regions`.

    Layers (indices of ``model``, the keys of SEAN's ``Zencoder.model``)::

        0 ReflectionPad(1)  1 Conv3×3(in → ngf)           2 IN  3 LReLU(0.2)
        4 Conv3×3 s2(→ 2ngf)  5 IN  6 LReLU                7 Conv3×3 s2(→ 4ngf)  8 IN  9 LReLU
        10 ConvT3×3 s2(→ 8ngf)  11 IN  12 LReLU            13 ReflectionPad(1)
        14 Conv3×3(8ngf → style_dim)  15 Tanh

    (shown for ``n_downsampling=2``; the instance norms have no parameters). With the
    defaults the parameter names and shapes are SEAN's, so its ``Zencoder.*`` weights load.
    SEAN declares the norm after the transposed conv with half its channels; a
    parameter-free instance norm does not depend on that number, so here it has the right one.

    Args:
        input_nc: image channels.
        style_dim: D, the code length (512 in SEAN).
        ngf: width of the first conv (32).
        n_downsampling: stride-2 convs before the single transposed conv (2).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - image: ``(N, input_nc, H, W)``, any size divisible by ``2**n_downsampling``
        - segmap: ``(N, L, H', W')`` one-hot or soft map (any size; resized to the style map)
        - output: ``(N, L, style_dim)``

    Example:
        >>> enc = StyleEncoder(style_dim=16, ngf=4)
        >>> seg = torch.nn.functional.one_hot(torch.randint(3, (2, 32, 32)), 3).permute(0, 3, 1, 2)
        >>> enc(torch.randn(2, 3, 32, 32), seg.float()).shape
        torch.Size([2, 3, 16])
    """

    def __init__(
        self,
        input_nc: int = 3,
        *,
        style_dim: int = 512,
        ngf: int = 32,
        n_downsampling: int = 2,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.input_nc, self.style_dim, self.n_downsampling = input_nc, style_dim, n_downsampling
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(input_nc, ngf, 3, **dd)]
        layers += [nn.InstanceNorm2d(ngf), nn.LeakyReLU(0.2)]
        width = ngf
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, **dd),
                       nn.InstanceNorm2d(2 * width), nn.LeakyReLU(0.2)]
            width *= 2
        layers += [nn.ConvTranspose2d(width, 2 * width, 3, stride=2, padding=1, output_padding=1, **dd),
                   nn.InstanceNorm2d(2 * width), nn.LeakyReLU(0.2)]
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(2 * width, style_dim, 3, **dd), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def style_map(self, image: Tensor) -> Tensor:
        """The per-pixel style features ``(N, style_dim, H / 2, W / 2)`` in ``[-1, 1]``."""
        check_shape(image, ("N", "C", "H", "W"), "StyleEncoder image", {"C": self.input_nc})
        stride = 2**self.n_downsampling
        if image.shape[-2] % stride or image.shape[-1] % stride:
            raise ValueError(f"StyleEncoder image: height and width must be multiples of {stride}, "
                             f"got {tuple(image.shape[-2:])}")
        return self.model(image)

    def encode_regions(self, image: Tensor, segmap: Tensor) -> tuple[Tensor, Tensor]:
        """Codes ``(N, L, D)`` and which regions have pixels at the style map's size, ``(N, L)`` bool."""
        features = self.style_map(image)
        check_shape(segmap, ("N", "L", "H'", "W'"), "StyleEncoder segmap", {"N": image.shape[0]})
        masks = resize_segmap(segmap.to(features.dtype), features.shape[-2:])
        return region_average_pool(features, masks), masks.flatten(2).sum(-1) > 0

    def forward(self, image: Tensor, segmap: Tensor) -> Tensor:
        """Style codes ``(N, L, style_dim)``: the style map averaged over each region."""
        return self.encode_regions(image, segmap)[0]
