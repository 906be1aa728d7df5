r"""Cosine Normalization (Luo et al., 2017): a convolution's response as a cosine similarity.

Cosine normalization replaces the dot product of a filter ``w_c`` and an input patch ``x_p`` by
their cosine, bounding every response to ``[−1, 1]`` (``centered=True``: the Pearson correlation,
filter and patch each minus their mean):

.. math::
    y_{c,p} = \frac{w_c \cdot x_p}{\lVert w_c \rVert\,\lVert x_p \rVert + \epsilon}

It normalizes a *response* by the norms of what produced it, so it is not a function of a
feature map alone. As a normalizer of a ``C``-channel map it therefore owns the ``C → C``
filters (``kernel``, ``(C, C, k, k)``, no bias) whose cosine response it returns; they start as
the identity (Dirac), so at init each pixel's feature vector is divided by its L2 norm
(``k = 1``). The filters are the method's own parameters; there is no affine, no running
statistics. Under a conditional layer: ``modulate(cosine_conv(x), γ(c), β(c))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Normalizer2d, dd

__all__ = ["CosineNorm2d"]


class CosineNorm2d(Normalizer2d):
    """A ``C → C`` convolution whose responses are cosine similarities (see the module).

    Args:
        num_features: C, the number of channels in and out.
        kernel_size: k, odd (patches of ``C × k × k`` values; 1 by default).
        centered: Pearson correlation instead of cosine (filters and patches centred).
        eps: added to the product of the norms.
        affine: add a per-channel ``weight`` and ``bias``.
        device: parameter device.
        dtype: parameter dtype.

    Raises:
        ValueError: for an even ``kernel_size``.

    Example:
        >>> cn = CosineNorm2d(4)
        >>> y = cn(torch.randn(2, 4, 3, 3))
        >>> torch.allclose(y.norm(dim=1), torch.ones(2, 3, 3), atol=1e-4)  # pixel-wise L2 at init
        True
    """

    def __init__(self, num_features: int, *, kernel_size: int = 1, centered: bool = False, eps: float = 1e-5,
                 affine: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps=eps, affine=affine, device=device, dtype=dtype)
        if kernel_size % 2 != 1:
            raise ValueError(f"CosineNorm2d: kernel_size must be odd to keep the size, got {kernel_size}")
        self.centered = centered
        self.kernel = nn.Parameter(torch.empty(num_features, num_features, kernel_size, kernel_size,
                                               **dd(device, dtype)))
        nn.init.dirac_(self.kernel)

    def forward(self, x: Tensor) -> Tensor:
        """The cosine (or correlation) of every filter with every patch of ``x``."""
        self._check_input(x)
        w = self.kernel
        k = w.shape[-1]
        if self.centered:
            w = w - w.mean((1, 2, 3), keepdim=True)
        pad = k // 2
        response = F.conv2d(x, w, padding=pad)
        ones = w.new_ones(1, w.shape[1], k, k)  # shapes from the parameter: static when traced
        patch_sq = F.conv2d(x.square(), ones, padding=pad)  # (N, 1, H, W): Σ x² over each patch
        if self.centered:  # ‖x − x̄‖² = Σ x² − (Σ x)² / n; (w − w̄)·x̄ = 0, so the response is unchanged
            patch_sq = patch_sq - F.conv2d(x, ones, padding=pad).square() / ones.numel()
        w_norm = w.flatten(1).norm(dim=1)[:, None, None]
        return self._affine(response / (w_norm * patch_sq.clamp_min(0).sqrt() + self.eps))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel_size={self.kernel.shape[-1]}, centered={self.centered}"
