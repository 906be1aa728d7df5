"""SPADE: spatially-adaptive normalization (Park et al., CVPR 2019)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_shape
from .functional import modulate, resize_segmap
from .norm import NormSpec, make_norm

__all__ = ["SPADE", "SpatiallyAdaptiveNorm2d"]


class SPADE(nn.Module):
    r"""Spatially-adaptive (de)normalization.

    .. math::
        \mathrm{out} = \mathrm{norm}(x)\,(1 + \gamma(m)) + \beta(m),\quad
        \gamma, \beta = \mathrm{conv}_{\gamma,\beta}(\mathrm{ReLU}(\mathrm{conv}(m)))

    where ``m`` is the semantic map resized (nearest) to ``x``'s size. Parameter names
    follow the official implementation (``param_free_norm``, ``mlp_shared.0``, ``mlp_gamma``,
    ``mlp_beta``), so official state dicts load with ``strict=True``. ``mlp_gamma`` and
    ``mlp_beta`` start at zero, making the layer the identity after normalisation.

    Export: traces with TorchScript, compiles with ``fullgraph=True`` and exports to ONNX.

    Args:
        num_features: C, channels of ``x``.
        label_nc: L, channels of the semantic map.
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        kernel_size: kernel of the three convolutions (the paper's 3).
        hidden: width of the shared embedding (128 in the paper).
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the normalizer (``eps``, ``momentum``).

    Shape:
        - x: ``(N, C, H, W)``
        - segmap: ``(N, L, H', W')`` one-hot or soft map
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = SPADE(16, label_nc=5)
        >>> x, seg = torch.randn(2, 16, 8, 8), torch.rand(2, 5, 32, 32)
        >>> layer(x, seg).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        label_nc: int,
        *,
        norm: NormSpec = "batch",
        kernel_size: int = 3,
        hidden: int = 128,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"SPADE: kernel_size must be odd to keep the size, got {kernel_size}")
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.label_nc = label_nc
        pad = kernel_size // 2
        self.param_free_norm = make_norm(norm, num_features, **norm_kw, **dd)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_nc, hidden, kernel_size, padding=pad, **dd), nn.ReLU()
        )
        self.mlp_gamma = nn.Conv2d(hidden, num_features, kernel_size, padding=pad, **dd)
        self.mlp_beta = nn.Conv2d(hidden, num_features, kernel_size, padding=pad, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the γ and β predictors (identity after normalisation)."""
        for conv in (self.mlp_gamma, self.mlp_beta):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def gamma_beta(self, segmap: Tensor, size: tuple[int, int] | torch.Size) -> tuple[Tensor, Tensor]:
        """Predict γ and β, each ``(N, C, H, W)``, from ``segmap`` resized to ``size = (H, W)``.

        The unchecked core of :meth:`forward`, shared with layers that blend SPADE's γ, β
        with others (:class:`condnorm.RAIN`).
        """
        actv = self.mlp_shared(resize_segmap(segmap, size))
        return self.mlp_gamma(actv), self.mlp_beta(actv)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        """Normalise ``x`` and modulate it with γ, β predicted from ``segmap``."""
        sizes = check_shape(x, ("N", "C", "H", "W"), "SPADE x", {"C": self.num_features})
        check_shape(segmap, ("N", "L", "H'", "W'"), "SPADE segmap",
                    {"N": sizes["N"], "L": self.label_nc})
        gamma, beta = self.gamma_beta(segmap.to(x.dtype), x.shape[-2:])
        return modulate(self.param_free_norm(x), gamma, beta)

    def extra_repr(self) -> str:
        return f"{self.num_features}, label_nc={self.label_nc}"


SpatiallyAdaptiveNorm2d = SPADE
