"""Adaptive instance normalization: from a style's statistics (Huang & Belongie, 2017) or a style vector."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from . import functional as CF
from ._check import check_finite, check_shape
from .norm import NormSpec, apply_norm, make_norm

__all__ = ["AdaIN", "AdaptiveInstanceNorm2d"]


class AdaIN(nn.Module):
    r"""Parameter-free AdaIN: give the content the style's channel means and deviations.

    .. math::
        \mathrm{out} = \alpha\left(\sigma(y)\,\frac{x - \mu(x)}{\sigma(x)} + \mu(y)\right)
        + (1 - \alpha)\,x

    A thin wrapper over :func:`condnorm.functional.adain`; see there for the statistics.
    ``unbiased=True`` reproduces the pytorch-AdaIN port exactly (variance with ``n - 1``,
    eps added to the variance); the default matches ``instance_norm``.

    Args:
        num_features: C; when given, the content's channels are checked against it.
        eps: added to the variances.
        unbiased: use the ``n - 1`` variance of the pytorch-AdaIN port.

    Shape:
        - content: ``(N, C, H, W)``
        - style: ``(N, C, H', W')``, or a ``(mean, std)`` pair of ``(N, C, 1, 1)`` or ``(N, C)``
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = AdaIN(64)
        >>> layer(torch.randn(2, 64, 32, 32), torch.randn(2, 64, 16, 16), alpha=0.8).shape
        torch.Size([2, 64, 32, 32])
    """

    def __init__(self, num_features: int | None = None, *, eps: float = 1e-5, unbiased: bool = False) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.unbiased = unbiased

    def forward(self, content: Tensor, style: CF.StyleSpec, alpha: float = 1.0) -> Tensor:
        """Stylise ``content`` with ``style``'s statistics; ``alpha`` blends with the content."""
        if self.num_features is not None:
            check_shape(content, ("N", "C", "H", "W"), "AdaIN content", {"C": self.num_features})
        return CF.adain(content, style, eps=self.eps, unbiased=self.unbiased, alpha=alpha)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, unbiased={self.unbiased}"


class AdaptiveInstanceNorm2d(nn.Module):
    r"""Instance normalization modulated by a style vector (MUNIT, StyleGAN1's style modulation).

    .. math::
        \mathrm{out} = \mathrm{IN}(x)\,(1 + \gamma) + \beta, \qquad [\gamma, \beta] = W s + b

    The projection ``affine`` (``Linear(D, 2C)``, γ rows first) starts at zero, so the layer is
    ``IN(x)`` at init. ``plain_gamma=True`` gives StyleGAN1/mmagic's form ``IN(x) γ + β`` with
    the γ bias initialised to 1, the same function at init.

    Args:
        num_features: C, channels of ``x``.
        style_dim: D, size of the style vector.
        norm: the parameter-free normalizer (instance statistics by default).
        plain_gamma: use ``γ`` instead of ``1 + γ``.
        eps: the normalizer's epsilon.
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the normalizer (``momentum``, ``num_groups``).

    Shape:
        - x: ``(N, C, H, W)``
        - style: ``(N, D)``
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = AdaptiveInstanceNorm2d(16, style_dim=8)
        >>> layer(torch.randn(2, 16, 8, 8), torch.randn(2, 8)).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        style_dim: int,
        *,
        norm: NormSpec = "instance",
        plain_gamma: bool = False,
        eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.style_dim = style_dim
        self.plain_gamma = plain_gamma
        self.param_free_norm = make_norm(norm, num_features, eps=eps, **norm_kw, **dd)
        self.affine = nn.Linear(style_dim, 2 * num_features, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the projection (γ's bias at 1 with ``plain_gamma``): ``IN(x)`` at init."""
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():
            self.affine.bias.zero_()
            self.affine.bias[: self.num_features] = float(self.plain_gamma)

    def forward(self, x: Tensor, style: Tensor, **norm_kwargs: Any) -> Tensor:
        """Normalise ``x`` and modulate it with γ, β projected from ``style``.

        ``norm_kwargs`` go to the normalizer unchanged (:func:`condnorm.norm.apply_norm`).
        """
        sizes = check_shape(x, ("N", "C", "H", "W"), "AdaptiveInstanceNorm2d x", {"C": self.num_features})
        check_shape(style, ("N", "D"), "AdaptiveInstanceNorm2d style", {"N": sizes["N"], "D": self.style_dim})
        check_finite(style, "AdaptiveInstanceNorm2d style")
        gamma, beta = self.affine(style)[:, :, None, None].chunk(2, dim=1)
        normalized = apply_norm(self.param_free_norm, x, norm_kwargs)
        return CF.modulate(normalized, gamma, beta, plain_gamma=self.plain_gamma)

    def extra_repr(self) -> str:
        return f"{self.num_features}, style_dim={self.style_dim}, plain_gamma={self.plain_gamma}"
