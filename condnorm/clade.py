"""CLADE: class-adaptive normalization (Tan et al., 2021), SPADE's cost-free cousin."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_shape
from .functional import modulate, region_broadcast, resize_segmap
from .norm import NormSpec, apply_norm, make_norm

__all__ = ["CLADE", "ClassAdaptiveNorm2d"]


class ClassAdaptiveNorm2d(nn.Module):
    r"""Class-adaptive (de)normalization: γ and β looked up per pixel from per-class tables.

    .. math::
        \mathrm{out} = \mathrm{norm}(x)\,(1 + \gamma) + \beta,\qquad
        \gamma_{n,:,h,w} = \sum_l m_{n,l,h,w}\, W_{l,:},\quad
        \beta_{n,:,h,w} = \sum_l m_{n,l,h,w}\, B_{l,:}

    where ``m`` is the semantic map resized (nearest) to ``x``'s size. For a one-hot map the
    sums are the table lookup of the paper; soft maps blend the classes' rows. Integer id maps
    are looked up directly (``F.embedding``). Cost: one ``L × 2C`` matrix product per pixel,
    against SPADE's three convolutions.

    By default ``W`` and ``B`` start at zero (the ``1 + γ`` convention: the identity after
    normalisation). ``plain_gamma=True`` keeps the paper's form, ``out = norm(x) γ + β`` with
    ``W ~ U[0, 1)`` and ``B = 0``.

    Args:
        num_features: C, channels of ``x``.
        label_nc: L, the number of classes.
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        plain_gamma: use the paper's ``γ`` instead of ``1 + γ`` (and its initialisation).
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the normalizer (``eps``, ``momentum``).

    Attributes:
        weight: the γ table, ``(L, C)``.
        bias: the β table, ``(L, C)``.

    Shape:
        - x: ``(N, C, H, W)``
        - segmap: ``(N, L, H', W')`` one-hot or soft map, or ``(N, H', W')`` integer ids
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = CLADE(16, label_nc=5)  # short alias
        >>> x, seg = torch.randn(2, 16, 8, 8), torch.randint(5, (2, 32, 32))
        >>> layer(x, seg).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        label_nc: int,
        *,
        norm: NormSpec = "batch",
        plain_gamma: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.label_nc = label_nc
        self.plain_gamma = plain_gamma
        self.param_free_norm = make_norm(norm, num_features, **norm_kw, **dd)
        self.weight = nn.Parameter(torch.empty(label_nc, num_features, **dd))
        self.bias = nn.Parameter(torch.empty(label_nc, num_features, **dd))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero both tables, or γ ~ U[0, 1) and β = 0 with ``plain_gamma`` (the paper's init)."""
        if self.plain_gamma:
            nn.init.uniform_(self.weight, 0.0, 1.0)
        else:
            nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, segmap: Tensor, **norm_kwargs: Any) -> Tensor:
        """Normalise ``x`` and modulate it with its pixels' class rows of γ and β.

        ``norm_kwargs`` go to the normalizer unchanged (:func:`condnorm.norm.apply_norm`).
        """
        sizes = check_shape(x, ("N", "C", "H", "W"), "CLADE x", {"C": self.num_features})
        if segmap.dim() == 3:
            check_shape(segmap, ("N", "H'", "W'"), "CLADE segmap (ids)", {"N": sizes["N"]})
        else:
            check_shape(segmap, ("N", "L", "H'", "W'"), "CLADE segmap",
                        {"N": sizes["N"], "L": self.label_nc})
            segmap = segmap.to(x.dtype)
        table = torch.cat([self.weight, self.bias], dim=1)  # one pass paints γ and β
        gamma, beta = region_broadcast(resize_segmap(segmap, x.shape[-2:]), table).chunk(2, dim=1)
        normalized = apply_norm(self.param_free_norm, x, norm_kwargs)
        return modulate(normalized, gamma, beta, plain_gamma=self.plain_gamma)

    def extra_repr(self) -> str:
        return f"{self.num_features}, label_nc={self.label_nc}, plain_gamma={self.plain_gamma}"


CLADE = ClassAdaptiveNorm2d
