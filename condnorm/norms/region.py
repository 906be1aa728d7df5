r"""Region Normalization (Yu et al., AAAI 2020): batch statistics per region of a mask.

The mask splits the pixels into two regions (1 and 0; in inpainting, the hole and the rest);
every region of every channel is standardised with its own mean and variance over the batch and
the region's pixels (batch normalization restricted to the region, as the authors' code computes
it: sums over ``(N, H, W)``):

.. math::
    \mu_c^{r} = \frac{\sum_{nhw} m^r x}{\sum_{nhw} m^r},\quad
    \sigma^{2,r}_c = \frac{\sum_{nhw} m^r (x - \mu^r_c)^2}{\sum_{nhw} m^r},\quad
    y = \sum_{r \in \{1, 0\}} m^r \frac{x - \mu^r_c}{\sqrt{\sigma^{2,r}_c + \epsilon}}

with ``m¹ = m``, ``m⁰ = 1 − m``. An empty region contributes nothing (its count is clamped to 1).
Like the authors' layers there are no running statistics: eval mode also uses the batch's.
RN-B (:class:`RegionNorm2d`) takes the binary mask as context; RN-L
(:class:`LearnedRegionNorm2d`) derives it from the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._check import check_shape
from ._base import Normalizer2d, dd

__all__ = ["LearnedRegionNorm2d", "RegionNorm2d", "region_norm"]


def region_norm(x: Tensor, mask: Tensor, eps: float = 1e-5) -> Tensor:
    """Standardise each region (``mask`` 1 and 0) of each channel with its statistics over the batch.

    Args:
        x: ``(N, C, H, W)`` features.
        mask: ``(N, 1, H, W)`` region mask in ``[0, 1]`` (0/1 for RN's hard regions).
        eps: added to the variances.

    Returns:
        ``(N, C, H, W)``.

    Example:
        >>> x, m = torch.randn(2, 3, 4, 4), (torch.rand(2, 1, 4, 4) > 0.5).float()
        >>> region_norm(x, m).shape
        torch.Size([2, 3, 4, 4])
    """
    out = torch.zeros_like(x)
    for region in (mask, 1 - mask):
        count = region.sum((0, 2, 3), keepdim=True).clamp_min(1)
        mean = (x * region).sum((0, 2, 3), keepdim=True) / count
        var = ((x - mean).square() * region).sum((0, 2, 3), keepdim=True) / count
        out = out + region * (x - mean) * torch.rsqrt(var + eps)
    return out


def _resized(mask: Tensor, x: Tensor, name: str) -> Tensor:
    check_shape(mask, ("N", 1, "H'", "W'"), name, {"N": x.shape[0]})
    if mask.shape[-2:] != x.shape[-2:]:
        mask = F.interpolate(mask, size=x.shape[-2:], mode="nearest")
    return mask.to(x.dtype)


class RegionNorm2d(Normalizer2d):
    """RN-B: region normalization given a binary mask (Yu et al., 2020).

    No running statistics (as in the authors' code, eval mode uses the batch's statistics too).
    The mask is resized (nearest) to ``x``'s size, so one mask can be passed to every layer of
    a network.

    Args:
        num_features: C, the number of channels.
        eps: added to the variances.
        affine: add a per-channel ``weight`` and ``bias`` (the paper's RN-B has one pair per region).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, H, W)``; mask: ``(N, 1, H', W')`` with 0/1 values; output: ``(N, C, H, W)``.

    Raises:
        ValueError: without a mask, or for a mask of the wrong shape.

    Example:
        >>> rn = RegionNorm2d(8)
        >>> rn(torch.randn(2, 8, 16, 16), mask=(torch.rand(2, 1, 32, 32) > 0.5).float()).shape
        torch.Size([2, 8, 16, 16])
    """

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Standardise each region of ``x`` given by ``mask`` (the context every layer passes on)."""
        self._check_input(x)
        if mask is None:
            raise ValueError("RegionNorm2d: needs mask= (N, 1, H, W), 1 inside the region and 0 outside; "
                             "pass it to the conditional layer as a keyword (layer(x, cond, mask=m))")
        return self._affine(region_norm(x, _resized(mask, x, "RegionNorm2d mask"), self.eps))


class LearnedRegionNorm2d(Normalizer2d):
    r"""RN-L: region normalization with a mask learned from the input (Yu et al., 2020).

    .. math::
        s = \sigma\big(\mathrm{conv}([\mathrm{mean}_c x, \max_c x])\big),\quad
        m = [s \ge t],\quad y = \mathrm{RN}(x, m)\,(1 + \gamma(s)) + \beta(s)

    The spatial response map ``s`` comes from the channel-wise mean and max maps and one
    bias-free convolution (``response``); thresholding at ``t = 0.8`` (the paper's value) gives
    the regions. The threshold has no gradient: the paper trains ``response`` through its
    *self-aware affine*, the one-channel maps ``γ(s)``, ``β(s)`` (convolutions ``gamma``,
    ``beta`` of ``s``). They are part of how RN-L learns its regions, so they stay under a
    conditional layer; they start at zero here (the layer is region normalization at init,
    like condnorm's other predictors; the authors use the default init).

    Args:
        num_features: C, the number of channels.
        eps: added to the variances.
        threshold: ``t``, the response from which a pixel is in region 1.
        kernel_size: of the three convolutions (odd; the authors' 7).
        affine: add a per-channel ``weight`` and ``bias`` after the self-aware affine.
        device: parameter device.
        dtype: parameter dtype.

    Raises:
        ValueError: for an even ``kernel_size``.

    Example:
        >>> rnl = LearnedRegionNorm2d(8)
        >>> rnl(torch.randn(2, 8, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, threshold: float = 0.8, kernel_size: int = 7,
                 affine: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps=eps, affine=affine, device=device, dtype=dtype)
        if kernel_size % 2 != 1:
            raise ValueError(f"LearnedRegionNorm2d: kernel_size must be odd to keep the size, "
                             f"got {kernel_size}")
        self.threshold = threshold
        pad = kernel_size // 2
        self.response = nn.Conv2d(2, 1, kernel_size, padding=pad, bias=False, **dd(device, dtype))
        self.gamma = nn.Conv2d(1, 1, kernel_size, padding=pad, **dd(device, dtype))
        self.beta = nn.Conv2d(1, 1, kernel_size, padding=pad, **dd(device, dtype))
        for conv in (self.gamma, self.beta):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def spatial_response(self, x: Tensor) -> Tensor:
        """``s``, ``(N, 1, H, W)`` in ``(0, 1)``."""
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return torch.sigmoid(self.response(pooled))

    def forward(self, x: Tensor) -> Tensor:
        """Standardise the learned regions of ``x``, then apply the self-aware affine."""
        self._check_input(x)
        s = self.spatial_response(x)
        y = region_norm(x, (s.detach() >= self.threshold).to(x.dtype), self.eps)
        return self._affine(y * (1 + self.gamma(s)) + self.beta(s))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, threshold={self.threshold}"
