r"""Region Normalization (Yu et al., AAAI 2020): statistics per region of a mask.

The mask splits each sample's pixels into two regions (1 and 0; in inpainting, the hole and the
rest); every region of every channel of every sample is standardised with its own mean and
variance, like instance normalization restricted to the region:

.. math::
    \mu_{n,c}^{r} = \frac{\sum_{hw} m^r x}{\sum_{hw} m^r},\quad
    \sigma^{2,r}_{n,c} = \frac{\sum_{hw} m^r (x - \mu^r)^2}{\sum_{hw} m^r},\quad
    y = \sum_{r \in \{1, 0\}} m^r \frac{x - \mu^r}{\sqrt{\sigma^{2,r} + \epsilon}}

with ``m¹ = m``, ``m⁰ = 1 − m``. An empty region contributes nothing (its count is clamped to 1).
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
    """Standardise each region (``mask`` 1 and 0) of each channel of each sample on its own.

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
        count = region.sum((2, 3), keepdim=True).clamp_min(1)
        mean = (x * region).sum((2, 3), keepdim=True) / count
        var = ((x - mean).square() * region).sum((2, 3), keepdim=True) / count
        out = out + region * (x - mean) * torch.rsqrt(var + eps)
    return out


def _resized(mask: Tensor, x: Tensor, name: str) -> Tensor:
    check_shape(mask, ("N", 1, "H'", "W'"), name, {"N": x.shape[0]})
    if mask.shape[-2:] != x.shape[-2:]:
        mask = F.interpolate(mask, size=x.shape[-2:], mode="nearest")
    return mask.to(x.dtype)


class RegionNorm2d(Normalizer2d):
    """RN-B: region normalization given a binary mask (Yu et al., 2020).

    No running statistics (per-sample regions, as in the paper). The mask is resized (nearest)
    to ``x``'s size, so one mask can be passed to every layer of a network.

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
        if mask is None:
            raise ValueError("RegionNorm2d: needs mask= (N, 1, H, W), 1 inside the region and 0 outside; "
                             "pass it to the conditional layer as a keyword (layer(x, cond, mask=m))")
        return self._affine(region_norm(x, _resized(mask, x, "RegionNorm2d mask"), self.eps))


class LearnedRegionNorm2d(Normalizer2d):
    r"""RN-L: region normalization with a mask learned from the input (Yu et al., 2020).

    .. math::
        s = \sigma\big(\mathrm{conv}([\max_c x, \mathrm{mean}_c x])\big),\quad
        m = [s > t],\quad y = s \cdot \mathrm{RN}(x, m)

    The spatial response map ``s`` comes from the channel-wise max and mean pooled maps and one
    convolution (``response``); thresholding at ``t = 0.8`` (the paper's value) gives the
    regions. The threshold has no gradient, so the paper multiplies its affine parameters
    pixel-wise by ``s`` to train the convolution; without affine parameters (γ = 1, β = 0 under
    a conditional layer) that is the factor ``s`` above.

    Args:
        num_features: C, the number of channels.
        eps: added to the variances.
        threshold: ``t``, the response above which a pixel is in region 1.
        kernel_size: of the response convolution (odd).
        affine: add a per-channel ``weight`` and ``bias`` (multiplied by ``s`` as in the paper).
        device: parameter device.
        dtype: parameter dtype.

    Raises:
        ValueError: for an even ``kernel_size``.

    Example:
        >>> rnl = LearnedRegionNorm2d(8)
        >>> rnl(torch.randn(2, 8, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, threshold: float = 0.8, kernel_size: int = 3,
                 affine: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps=eps, affine=affine, device=device, dtype=dtype)
        if kernel_size % 2 != 1:
            raise ValueError(f"LearnedRegionNorm2d: kernel_size must be odd to keep the size, "
                             f"got {kernel_size}")
        self.threshold = threshold
        self.response = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, **dd(device, dtype))

    def spatial_response(self, x: Tensor) -> Tensor:
        """``s``, ``(N, 1, H, W)`` in ``(0, 1)``."""
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
        return torch.sigmoid(self.response(pooled))

    def forward(self, x: Tensor) -> Tensor:
        """Standardise the learned regions of ``x`` and scale by the response map."""
        s = self.spatial_response(x)
        y = region_norm(x, (s > self.threshold).to(x.dtype), self.eps)
        if self.affine:
            return y * (s * self.weight[:, None, None]) + s * self.bias[:, None, None]
        return y * s

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, threshold={self.threshold}"
