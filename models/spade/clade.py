"""The CLADE generator (Tan et al., 2021): the SPADE generator with class-adaptive norms."""

from __future__ import annotations

import functools
from typing import Any

import torch

import condnorm
from condnorm.norm import NormSpec

from .generator import SPADEGenerator

__all__ = ["clade_generator"]


def clade_generator(
    semantic_nc: int,
    *,
    norm: NormSpec = "syncbatch",
    plain_gamma: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> SPADEGenerator:
    """A :class:`SPADEGenerator` whose every SPADE layer is a :class:`condnorm.CLADE` layer.

    CLADE replaces SPADE's three convolutions per layer by a per-class table lookup of γ and
    β, so the generator keeps SPADE's backbone (``fc``, the residual blocks' convs,
    ``conv_img``) at a fraction of the parameters and compute. The norms keep SPADE's names
    (``norm_0``, ``norm_1``, ``norm_s``) and hold ``weight``/``bias`` tables of shape
    ``(semantic_nc, C)``. With instance edges the edge channel is one more row, added on
    boundary pixels (the paper concatenates a conv of it instead).

    Args:
        semantic_nc: channels of the segmap (classes + dontcare + instance edges).
        norm: parameter-free normalizer inside CLADE.
        plain_gamma: the paper's ``norm(x) γ + β`` with ``γ ~ U[0, 1)`` instead of ``1 + γ``
            with zero-initialised tables (see :class:`condnorm.CLADE`).
        device: parameter device.
        dtype: parameter dtype.
        **kwargs: :class:`SPADEGenerator` arguments (``ngf``, ``crop_size``, ``use_vae``, …).

    Returns:
        The generator; same call and output as the SPADE generator.

    Example:
        >>> g = clade_generator(6, ngf=4, crop_size=32, norm="batch")
        >>> type(g.head_0.norm_0).__name__, tuple(g.head_0.norm_0.weight.shape)
        ('ClassAdaptiveNorm2d', (6, 64))
        >>> g(torch.rand(2, 6, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """
    norm_layer = functools.partial(condnorm.CLADE, label_nc=semantic_nc, norm=norm, plain_gamma=plain_gamma,
                                   device=device, dtype=dtype)
    return SPADEGenerator(semantic_nc, norm=norm, norm_layer=norm_layer, device=device, dtype=dtype, **kwargs)
