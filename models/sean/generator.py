"""SEAN's generator (Zhu et al., CVPR 2020): the SPADE generator with region-adaptive norms."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Union

import torch
from torch import Tensor, nn

import condnorm
from condnorm._check import check_shape
from condnorm.norm import NormSpec
from models.spade.blocks import ModulatedResBlock
from models.spade.generator import ModulatedGenerator

from .encoder import StyleEncoder

__all__ = ["SEANGenerator"]

NoiseSpec = Union[torch.Generator, Sequence[Tensor], Callable[[int, int, int], Tensor], None]  # noqa: UP007


class SEANGenerator(ModulatedGenerator):
    r"""Mask-to-image generator whose every region takes its style from a code (SEAN).

    The layer stack is the SPADE generator's (:class:`~models.spade.ModulatedGenerator`: ``fc``
    on the downsampled segmap, ``head_0`` … ``up_3``, ``conv_img``, tanh) with every conditional
    norm a :class:`condnorm.RAIN` fed the per-region style codes ``(N, L, style_dim)``, except in
    ``up_3``, which SEAN builds without the style branch (``RAIN(style_branch=False)``). The codes come
    from the style encoder ``Zencoder`` (:class:`StyleEncoder`) run on a style image and the
    segmap, or are given directly, e.g. mixed per region from several references.

    Parameter names are SEAN's (``Zencoder.model.*``, ``fc``, ``head_0.ace_0.fc_mu{j}`` …,
    ``conv_img``); SEAN's generator state dicts load with ``strict=True`` (its per-class
    linears are stacked by :class:`condnorm.RAIN`; unused inner-norm buffers and ``up_3``'s
    blending weights are dropped). Departures: any number of classes (SEAN: 19); noise is
    device-agnostic and seedable; ``num_upsampling_layers="most"`` runs ``up_4`` (SEAN builds it
    and never calls it); the RAIN/SPADE γ, β predictors start at zero and the encoder keeps
    PyTorch's default initialisation (the backbone convs get SPADE's xavier(0.02)).

    Noise is injected in training and evaluation, as in SEAN. Pass a seeded
    ``torch.Generator`` as ``noise`` for reproducible images, the draws themselves (one
    ``(N, 1, h, w)`` map per noisy layer, in :meth:`noise_shapes` order: what an exported graph
    takes as inputs), or build with ``noise=False``.

    Args:
        label_nc: L, channels of the segmap; every channel is a region with its own code.
        ngf: base width.
        style_dim: D, length of a region's code (512).
        crop_size: output width before rounding to a multiple of ``2**n``.
        aspect_ratio: width / height.
        num_upsampling_layers: ``"normal"`` (5), ``"more"`` (6) or ``"most"`` (7).
        norm: parameter-free normalizer of the RAIN layers (SEAN: ``"syncbatch"``).
        spectral: spectral normalisation on the blocks' convs.
        kernel_size: kernel of the SPADE-branch and style convs.
        hidden: width of the SPADE branch's embedding.
        noise: build the RAIN layers with their noise input.
        encoder_ngf: width of the style encoder's first conv (32).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - segmap: ``(N, L, H, W)`` one-hot map at :attr:`output_size`
        - style_image: ``(N, 3, H, W)`` in ``[-1, 1]``; or style_codes: ``(N, L, style_dim)``
        - output: ``(N, 3, H, W)`` in ``[-1, 1]``

    Example:
        >>> g = SEANGenerator(4, ngf=4, style_dim=8, crop_size=32, norm="batch", hidden=8, encoder_ngf=4)
        >>> seg = torch.nn.functional.one_hot(torch.randint(4, (2, 32, 32)), 4).permute(0, 3, 1, 2).float()
        >>> g(seg, style_image=torch.rand(2, 3, 32, 32) * 2 - 1).shape
        torch.Size([2, 3, 32, 32])
        >>> codes = g.encode(torch.zeros(2, 3, 32, 32), seg)  # (N, L, D): mix, save, reuse
        >>> g(seg, style_codes=codes, noise=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        label_nc: int,
        *,
        ngf: int = 64,
        style_dim: int = 512,
        crop_size: int = 256,
        aspect_ratio: float = 1.0,
        num_upsampling_layers: str = "normal",
        norm: NormSpec = "syncbatch",
        spectral: bool = True,
        kernel_size: int = 3,
        hidden: int = 128,
        noise: bool = True,
        encoder_ngf: int = 32,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        dd = {"device": device, "dtype": dtype}
        rain = functools.partial(condnorm.RAIN, label_nc=label_nc, style_dim=style_dim, norm=norm, hidden=hidden,
                                 kernel_size=kernel_size, noise=noise, **dd)

        def block(name: str, fin: int, fout: int) -> nn.Module:
            norm_layer = functools.partial(rain, style_branch=name != "up_3")  # SEAN: up_3 has no style branch
            return ModulatedResBlock(fin, fout, norm_layer, spectral=spectral, norm_prefix="ace", **dd)

        def fc(channels: int, sh: int, sw: int) -> nn.Module:
            return nn.Conv2d(label_nc, channels, 3, padding=1, **dd)

        super().__init__(label_nc, ngf=ngf, crop_size=crop_size, aspect_ratio=aspect_ratio,
                         num_upsampling_layers=num_upsampling_layers, block=block, fc=fc, **dd)
        self.label_nc, self.style_dim = label_nc, style_dim
        self.Zencoder = StyleEncoder(style_dim=style_dim, ngf=encoder_ngf, **dd)

    def encode(self, style_image: Tensor, segmap: Tensor) -> Tensor:
        """Per-region codes ``(N, L, style_dim)`` of ``style_image`` under ``segmap`` (its own mask)."""
        return self.Zencoder(style_image.to(self.conv_img.weight.dtype), segmap)

    def forward(self, segmap: Tensor, *, style_image: Tensor | None = None, style_codes: Tensor | None = None,
                noise: NoiseSpec = None) -> Tensor:
        """Synthesise an image from ``segmap`` with the styles of ``style_image`` or ``style_codes``.

        Args:
            segmap: one-hot (or soft) semantic map, see Shape.
            style_image: encode the codes from this image under ``segmap`` (reconstruction).
            style_codes: the codes themselves; exactly one of the two is required.
            noise: a ``torch.Generator`` for the RAIN noise (fresh draws when None), or the draws
                themselves, one ``(N, 1, h, w)`` map per noisy layer in :meth:`noise_shapes` order.

        Returns:
            The image ``(N, 3, H, W)`` in ``[-1, 1]``.
        """
        sizes = check_shape(segmap, ("N", "L", "H", "W"), "SEANGenerator segmap (a dense map)",
                            {"L": self.label_nc})
        self.check_size(sizes["H"], sizes["W"], "SEANGenerator segmap")
        if (style_image is None) == (style_codes is None):
            raise ValueError("SEANGenerator: pass exactly one of style_image= (encoded under segmap) or "
                             "style_codes= (N, label_nc, style_dim)")
        segmap = segmap.to(self.conv_img.weight.dtype)
        if style_image is not None:
            check_shape(style_image, ("N", 3, "H", "W"), "SEANGenerator style_image", sizes)
            style_codes = self.encode(style_image, segmap)
        check_shape(style_codes, ("N", "L", "D"), "SEANGenerator style_codes",
                    {"N": sizes["N"], "L": self.label_nc, "D": self.style_dim})
        pyramid = self.segmap_pyramid(segmap)
        if not isinstance(noise, (Sequence, Tensor)):
            return self.synthesize(self.fc(pyramid[0]), pyramid, style_codes, noise)
        draws = iter(noise)
        image = self.synthesize(self.fc(pyramid[0]), pyramid, style_codes, lambda n, h, w: _next_draw(draws))
        if next(draws, None) is not None:
            raise ValueError(f"SEANGenerator noise: got {len(noise)} noise maps for {len(self.noise_shapes())} "
                             "noisy layers")
        return image

    @torch.no_grad()
    def noise_shapes(self) -> list[tuple[int, int]]:
        """``(h, w)`` of the noise map each noisy layer draws, in the order they draw them."""
        shapes: list[tuple[int, int]] = []

        def record(n: int, h: int, w: int) -> Tensor:
            shapes.append((h, w))
            return self.conv_img.weight.new_zeros(n, 1, h, w)

        was_training = self.training
        seg = self.conv_img.weight.new_zeros(1, self.label_nc, *self.output_size)
        try:
            self.eval()(seg, style_codes=seg.new_zeros(1, self.label_nc, self.style_dim), noise=record)
        finally:
            self.train(was_training)
        return shapes


def _next_draw(draws: Iterator[Tensor]) -> Tensor:
    draw = next(draws, None)
    if draw is None:
        raise ValueError("SEANGenerator noise: fewer noise maps than noisy layers; see noise_shapes()")
    return draw
