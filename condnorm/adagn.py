"""Adaptive group normalization: ADM's scale-shift norm (Dhariwal & Nichol, 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .adaln import ForeignKeys
from .film import cond_projection
from .functional import film
from .norm import NormSpec, make_norm

__all__ = ["AdaGN", "AdaptiveGroupNorm"]


class AdaptiveGroupNorm(ForeignKeys):
    r"""Group normalization modulated by an embedding (timestep, class): ADM's ``use_scale_shift_norm``.

    .. math::
        h = \mathrm{GN}(x)\,(1 + s(e)) + b(e), \qquad [s, b] = W\,\mathrm{SiLU}(e) + c

    ``GN`` is the parameter-free normalizer (``norm="group"``, 32 groups, eps 1e-5) followed,
    with ``affine=True``, by its own per-channel ``weight`` and ``bias`` (ADM's ``GroupNorm32``
    has them; diffusers' ``AdaGroupNorm`` has not: ``affine=False``). ``emb_layers`` is
    ``Sequential(SiLU, Linear(E, 2C))``, scale first: ADM's ``ResBlock.emb_layers``, so an ADM
    block's ``out_layers.0.*`` and ``emb_layers.*`` map onto ``weight``/``bias`` and
    ``emb_layers.*`` (see ``models/adm``). ``emb_layers`` starts at zero (the layer is the
    group norm at init); ADM initialises it randomly and zeroes the next conv instead.
    diffusers' ``AdaGroupNorm`` state dicts (``linear.*``) load with ``strict=True`` into
    ``affine=False`` (read as ``emb_layers.1.*``; pass its ``act_fn`` as ``activation``).
    :meth:`from_group_norm` turns an existing ``nn.GroupNorm`` into this layer (a
    :func:`condnorm.convert` factory), keeping its groups, eps and affine parameters.

    Args:
        num_features: C, channels of ``x``.
        emb_dim: E, size of the embedding.
        num_groups: groups of the group norm (ADM's 32).
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        affine: learn GN's own per-channel weight and bias (ADM).
        activation: applied to the embedding first (ADM: ``"silu"``; diffusers: None or a name).
        eps: the normalizer's epsilon.
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the normalizer.

    Shape:
        - x: ``(N, C, *)`` (images ``(N, C, H, W)``, sequences ``(N, C, T)``)
        - emb: ``(N, E)``
        - output: as ``x``

    Example:
        >>> layer = AdaptiveGroupNorm(64, emb_dim=128)
        >>> layer(torch.randn(2, 64, 16, 16), torch.randn(2, 128)).shape
        torch.Size([2, 64, 16, 16])
    """

    FOREIGN_KEYS: Mapping[str, str] = {"linear.": "emb_layers.1."}

    def __init__(
        self,
        num_features: int,
        emb_dim: int,
        *,
        num_groups: int = 32,
        norm: NormSpec = "group",
        affine: bool = True,
        activation: str | None = "silu",
        eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.emb_dim = emb_dim
        group_kw = {"num_groups": num_groups} if norm in ("group", "gn") else {}  # other kinds have no groups
        self.param_free_norm = make_norm(norm, num_features, eps=eps, **group_kw, **norm_kw, **dd)
        self.weight = nn.Parameter(torch.ones(num_features, **dd)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features, **dd)) if affine else None
        self.emb_layers = cond_projection(emb_dim, 2 * num_features, activation, **dd)

    @classmethod
    def from_group_norm(cls, gn: nn.GroupNorm, emb_dim: int, **kw: Any) -> AdaptiveGroupNorm:
        """The AdaGN of an existing ``nn.GroupNorm`` (same groups, eps, affine values, device, dtype).

        Example:
            >>> from condnorm import convert
            >>> gn = nn.GroupNorm(4, 8)
            >>> net = convert(nn.Sequential(gn), nn.GroupNorm,
            ...                        lambda m: AdaptiveGroupNorm.from_group_norm(m, emb_dim=16))
            >>> type(net[0]).__name__, net[0].param_free_norm.num_groups
            ('AdaptiveGroupNorm', 4)
        """
        ref = {"device": gn.weight.device, "dtype": gn.weight.dtype} if gn.affine else {}
        layer = cls(gn.num_channels, emb_dim, num_groups=gn.num_groups, affine=gn.affine, eps=gn.eps,
                    **ref, **kw)
        if gn.affine:
            with torch.no_grad():
                layer.weight.copy_(gn.weight)
                layer.bias.copy_(gn.bias)
        return layer

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """Group-normalise ``x`` and modulate it with the scale and shift projected from ``emb``."""
        name = type(self).__name__
        if x.dim() < 3 or x.shape[1] != self.num_features:
            raise ValueError(f"{name} x: expected shape (N, C={self.num_features}, *) with at least one "
                             f"spatial dim, got {tuple(x.shape)}")
        check_shape(emb, ("N", "E"), f"{name} emb", {"N": x.shape[0], "E": self.emb_dim})
        check_finite(emb, f"{name} emb")
        h = self.param_free_norm(x)
        if self.weight is not None:
            shape = (-1,) + (1,) * (x.dim() - 2)
            h = torch.addcmul(self.bias.view(shape), h, self.weight.view(shape))
        scale, shift = self.emb_layers(emb).to(h.dtype).chunk(2, dim=1)
        return film(h, scale, shift, plain_gamma=False)

    def extra_repr(self) -> str:
        return f"{self.num_features}, emb_dim={self.emb_dim}, affine={self.weight is not None}"


AdaGN = AdaptiveGroupNorm
