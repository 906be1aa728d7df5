"""SEAN's generator (Zhu et al., CVPR 2020): the SPADE generator with region-adaptive norms."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn

import condnorm
from condnorm._check import check_shape
from condnorm.functional import inject_noise, modulate
from condnorm.norm import NormSpec, make_norm
from models.spade.blocks import ModulatedResBlock
from models.spade.generator import SPADEGenerator

from .encoder import StyleEncoder

__all__ = ["NoisySPADE", "SEANGenerator"]

NoiseSpec = torch.Generator | None


class NoisySPADE(nn.Module):
    r"""SEAN's ACE layer without its style branch (``use_rgb=False``, the generator's ``up_3``).

    .. math::
        \mathrm{out} = \mathrm{norm}(x + \sigma \odot z)\,(1 + \gamma(m)) + \beta(m)

    with γ, β from the SPADE branch ``Spade`` (:meth:`condnorm.SPADE.gamma_beta`), and the
    per-pixel noise ``z`` scaled by the per-channel ``noise_var`` exactly as in
    :class:`condnorm.RAIN`. Style codes are accepted and ignored, so the layer plugs in
    wherever a RAIN layer does. SEAN's checkpoint also holds this layer's unused
    ``blending_gamma``/``blending_beta`` and ``Spade.param_free_norm`` buffers: they are
    accepted and dropped when loading.

    Args:
        num_features: C, channels of ``x``.
        label_nc: L, channels of the semantic map.
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        hidden: width of the SPADE branch's shared embedding (128).
        kernel_size: kernel of the SPADE convolutions (3).
        noise: inject noise scaled by the learned ``noise_var`` (0 at init).
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the normalizer.

    Shape:
        - x: ``(N, C, H, W)``; segmap: ``(N, L, H', W')``; output: ``(N, C, H, W)``

    Example:
        >>> layer = NoisySPADE(8, label_nc=3, hidden=16)
        >>> layer(torch.randn(2, 8, 4, 4), torch.rand(2, 3, 16, 16), None, torch.Generator()).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(
        self,
        num_features: int,
        label_nc: int,
        *,
        norm: NormSpec = "batch",
        hidden: int = 128,
        kernel_size: int = 3,
        noise: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_features, self.label_nc = num_features, label_nc
        self.noise_var = nn.Parameter(torch.zeros(num_features, **dd)) if noise else None
        self.param_free_norm = make_norm(norm, num_features, **norm_kw, **dd)
        self.Spade = condnorm.SPADE(num_features, label_nc, norm="none", kernel_size=kernel_size,
                                    hidden=hidden, **dd)

    def forward(self, x: Tensor, segmap: Tensor, style_codes: Tensor | None = None,
                noise: Tensor | NoiseSpec = None) -> Tensor:
        """Normalise ``x`` (plus noise) and modulate it with SPADE's γ, β; ``style_codes`` is unused."""
        sizes = check_shape(x, ("N", "C", "H", "W"), "NoisySPADE x", {"C": self.num_features})
        check_shape(segmap, ("N", "L", "H'", "W'"), "NoisySPADE segmap",
                    {"N": sizes["N"], "L": self.label_nc})
        if self.noise_var is not None:
            x = inject_noise(x, self.noise_var, noise, name="NoisySPADE noise")
        elif noise is not None:
            raise ValueError("NoisySPADE noise: this layer was built with noise=False; pass noise=None")
        gamma, beta = self.Spade.gamma_beta(segmap.to(x.dtype), x.shape[-2:])
        return modulate(self.param_free_norm(x), gamma, beta)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        unused = ["blending_gamma", "blending_beta"] + [
            f"Spade.param_free_norm.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")]
        if self.noise_var is None:
            unused.append("noise_var")
        for name in unused:
            state_dict.pop(prefix + name, None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return f"{self.num_features}, label_nc={self.label_nc}, noise={self.noise_var is not None}"


class SEANGenerator(SPADEGenerator):
    r"""Mask-to-image generator whose every region takes its style from a code (SEAN).

    The layer stack is :class:`~models.spade.SPADEGenerator`'s (``fc`` on the downsampled
    segmap, ``head_0`` … ``up_3``, ``conv_img``, tanh) with every conditional norm a
    :class:`condnorm.RAIN` fed the per-region style codes ``(N, L, style_dim)``, except in
    ``up_3``, which SEAN builds without the style branch (:class:`NoisySPADE`). The codes come
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
    ``torch.Generator`` as ``noise`` for reproducible images, or build with ``noise=False``.

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
        shared = dict(label_nc=label_nc, norm=norm, hidden=hidden, kernel_size=kernel_size, noise=noise, **dd)
        rain = functools.partial(condnorm.RAIN, style_dim=style_dim, **shared)
        spade_only = functools.partial(NoisySPADE, **shared)

        def block(name: str, fin: int, fout: int) -> nn.Module:
            norm_layer = spade_only if name == "up_3" else rain
            return ModulatedResBlock(fin, fout, norm_layer, spectral=spectral, norm_prefix="ace", **dd)

        super().__init__(label_nc, ngf=ngf, crop_size=crop_size, aspect_ratio=aspect_ratio,
                         num_upsampling_layers=num_upsampling_layers, spectral=spectral, block=block, **dd)
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
            noise: a ``torch.Generator`` for the RAIN noise (fresh draws when None).

        Returns:
            The image ``(N, 3, H, W)`` in ``[-1, 1]``.
        """
        self._check_inputs(segmap, None)  # SPADEGenerator's checks: channels and spatial size
        sizes = check_shape(segmap, ("N", "L", "H", "W"), "SEANGenerator segmap (a dense map)")
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
        return self.synthesize(self.fc(pyramid[0]), pyramid, style_codes, noise)

    def norms(self) -> list[nn.Module]:
        """The RAIN (and ``up_3``'s :class:`NoisySPADE`) layers of all blocks."""
        return [m for b in self.blocks() for m in b.norms()]
