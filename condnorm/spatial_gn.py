"""Spatially modulated group norms: SDM's SPADEGroupNorm (diffusion UNets), MoVQ's SpatialNorm."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .film import cond_projection
from .functional import film, modulate, resize_segmap
from .semantic_map import SemanticMap
from .spade import SPADE

__all__ = ["SPADEGroupNorm", "SpatialNorm"]


class SPADEGroupNorm(SPADE):
    r"""SPADE on a group norm, then AdaGN from a timestep embedding: SDM's normalization.

    .. math::
        h = \big(\mathrm{GN}(x)\,(1 + \gamma(m)) + \beta(m)\big)\,(1 + s(e)) + b(e)

    The first factor is :class:`condnorm.SPADE` with ``norm="group"`` (32 groups, no affine, eps
    1e-5): the keys ``mlp_shared.0.*``, ``mlp_gamma.*``, ``mlp_beta.*`` are those of SDM's
    ``SPADEGroupNorm`` (``guided_diffusion/unet.py``), whose state dict loads with
    ``strict=True``; all of SPADE's label-map forms and fast paths apply. With ``emb_dim`` the
    layer also owns ``emb_layers = Sequential(SiLU, Linear(E, 2C))`` (scale first), which SDM's
    ``SDMResBlock`` keeps beside its ``out_norm``: a block's ``out_norm.*`` and ``emb_layers.*``
    load into this layer's keys and ``emb_layers.*``. All predictors start at zero (identity
    after normalisation; SDM initialises them randomly).

    Args:
        num_features: C, channels of ``x``.
        label_nc: L, channels of the semantic map.
        emb_dim: E, size of the timestep embedding (None: SPADE on GN only, SDM's ``in_norm``).
        num_groups: groups of the group norm (SDM's 32).
        eps: the group norm's epsilon.
        kernel_size: kernel of SPADE's convolutions (3).
        hidden: width of SPADE's shared embedding (128).
        activation: applied to the embedding first (``"silu"``).
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the group norm.

    Shape:
        - x: ``(N, C, H, W)``
        - segmap: ``(N, L, H', W')`` or ids ``(N, H', W')`` (see :class:`condnorm.SPADE`)
        - emb: ``(N, E)`` (required when ``emb_dim`` is set)
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = SPADEGroupNorm(64, label_nc=5, emb_dim=32, hidden=16)
        >>> layer(torch.randn(2, 64, 8, 8), torch.rand(2, 5, 32, 32), torch.randn(2, 32)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        label_nc: int,
        *,
        emb_dim: int | None = None,
        num_groups: int = 32,
        eps: float = 1e-5,
        kernel_size: int = 3,
        hidden: int = 128,
        activation: str | None = "silu",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__(num_features, label_nc, norm="group", kernel_size=kernel_size, hidden=hidden,
                         num_groups=num_groups, eps=eps, device=device, dtype=dtype, **norm_kw)
        self.emb_dim = emb_dim
        if emb_dim is not None:
            self.emb_layers = cond_projection(emb_dim, 2 * num_features, activation, device=device,
                                              dtype=dtype)

    def forward(self, x: Tensor, segmap: Tensor | SemanticMap, emb: Tensor | None = None) -> Tensor:
        """SPADE-modulate the group-normalised ``x``, then scale and shift it by ``emb``'s projection."""
        h = super().forward(x, segmap)
        if self.emb_dim is None:
            if emb is not None:
                raise ValueError("SPADEGroupNorm: got emb, but the layer was built without emb_dim")
            return h
        if emb is None:
            raise ValueError(f"SPADEGroupNorm: emb (N, E={self.emb_dim}) is required (emb_dim was given)")
        check_shape(emb, ("N", "E"), "SPADEGroupNorm emb", {"N": x.shape[0], "E": self.emb_dim})
        check_finite(emb, "SPADEGroupNorm emb")
        scale, shift = self.emb_layers(emb).to(h.dtype).chunk(2, dim=1)
        return film(h, scale, shift, plain_gamma=False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, emb_dim={self.emb_dim}"


class SpatialNorm(nn.Module):
    r"""Group norm scaled and shifted per pixel by a latent map: MoVQ's spatial normalization.

    .. math::
        y = \mathrm{GN}(f)\,\mathrm{conv}_y(z) + \mathrm{conv}_b(z)

    with ``z`` resized (nearest) to ``f``'s size and 1×1 convs. Keys are diffusers'
    ``SpatialNorm`` (``norm_layer`` = ``GroupNorm(32, C, eps=1e-6)`` with its own affine
    parameters, ``conv_y``, ``conv_b``), which load with ``strict=True``. The scale is the plain
    ``conv_y(z)`` as in MoVQ; it starts as the constant 1 (``conv_y``'s weight zero, bias one)
    and ``conv_b`` at zero, so the layer is ``GN(f)`` at init. ``plain_gamma=False`` gives
    ``GN(f)(1 + conv_y(z)) + conv_b(z)`` with both convs zeroed.

    Args:
        num_features: C, channels of ``f``.
        zq_channels: channels of the latent ``z``.
        num_groups: groups of the group norm (32).
        eps: the group norm's epsilon (1e-6).
        affine: the group norm's own weight and bias (diffusers: yes).
        plain_gamma: ``conv_y(z)`` as the scale (MoVQ) instead of ``1 + conv_y(z)``.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - f: ``(N, C, H, W)``
        - zq: ``(N, Z, H', W')``
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = SpatialNorm(64, zq_channels=4)
        >>> layer(torch.randn(2, 64, 32, 32), torch.randn(2, 4, 8, 8)).shape
        torch.Size([2, 64, 32, 32])
    """

    def __init__(
        self,
        num_features: int,
        zq_channels: int,
        *,
        num_groups: int = 32,
        eps: float = 1e-6,
        affine: bool = True,
        plain_gamma: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.zq_channels = zq_channels
        self.plain_gamma = plain_gamma
        self.norm_layer = nn.GroupNorm(num_groups, num_features, eps=eps, affine=affine, **dd)
        self.conv_y = nn.Conv2d(zq_channels, num_features, 1, **dd)
        self.conv_b = nn.Conv2d(zq_channels, num_features, 1, **dd)
        for conv in (self.conv_y, self.conv_b):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        if plain_gamma:
            nn.init.ones_(self.conv_y.bias)

    def forward(self, f: Tensor, zq: Tensor) -> Tensor:
        """Group-normalise ``f`` and modulate it per pixel with convs of the resized latent."""
        sizes = check_shape(f, ("N", "C", "H", "W"), "SpatialNorm f", {"C": self.num_features})
        check_shape(zq, ("N", "Z", "H'", "W'"), "SpatialNorm zq", {"N": sizes["N"], "Z": self.zq_channels})
        zq = resize_segmap(zq.to(f.dtype), f.shape[-2:])
        return modulate(self.norm_layer(f), self.conv_y(zq), self.conv_b(zq), plain_gamma=self.plain_gamma)

    def extra_repr(self) -> str:
        return f"{self.num_features}, zq_channels={self.zq_channels}, plain_gamma={self.plain_gamma}"
