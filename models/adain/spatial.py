"""Spatial control: a mask assigns a style to each region of the content (AdaIN-style ``-mask``).

As in the Lua original (``test.lua``), the mask is resized to the relu4_1 feature size, the
content features of each region are normalised with that region's own mean and standard
deviation, and each region takes the statistics of its style.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from condnorm._check import check_ids, check_shape
from condnorm.functional import labels_to_onehot, resize_segmap

__all__ = ["mask_to_regions", "regional_adain"]


def _as_ids(mask: Tensor, num_styles: int) -> Tensor:
    """A binary mask (1 → first style) or a map of style ids, as ``(N, H, W)`` long ids."""
    if mask.dim() == 2:
        mask = mask[None]
    if mask.dim() == 4:
        check_shape(mask, ("N", 1, "H", "W"), "mask")
        mask = mask[:, 0]
    check_shape(mask, ("N", "H", "W"), "mask")
    if mask.dtype == torch.bool or mask.is_floating_point():
        if num_styles != 2:
            raise ValueError(f"mask: a binary mask needs exactly two styles (foreground, background), "
                             f"got {num_styles}; pass an integer map of style ids for more")
        return (mask.float() < 0.5).long()
    check_ids(mask, num_styles, "mask")
    return mask.long()


def mask_to_regions(mask: Tensor, num_styles: int, image_size: tuple[int, int],
                    padded_size: tuple[int, int], feature_size: tuple[int, int]) -> Tensor:
    """Turn a user mask into one-hot style regions at the feature size.

    The mask is resized (nearest) to the content image, padded like the image (edge
    replication) and resized (nearest) to the feature map.

    Args:
        mask: ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``: a binary mask (bool, or float with
            foreground ≥ 0.5) for two styles — the foreground takes the first — or an integer
            map of style ids in ``[0, num_styles)``. Any size; ``N`` may be 1 (broadcast).
        num_styles: number of styles K.
        image_size: the content image's ``(H, W)``.
        padded_size: the padded image's size (its top-left part is the image).
        feature_size: the encoder's output size for the padded image.

    Returns:
        ``(N, K, h, w)`` float one-hot regions.

    Raises:
        ValueError: on a wrong shape, a binary mask with K ≠ 2, or ids outside ``[0, K)``.

    Example:
        >>> mask = torch.zeros(37, 53, dtype=torch.bool); mask[:, :20] = True
        >>> r = mask_to_regions(mask, 2, (37, 53), (40, 56), (5, 7))
        >>> r.shape, r[0, 0, 0].tolist()
        (torch.Size([1, 2, 5, 7]), [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    ids = resize_segmap(_as_ids(mask, num_styles), image_size)
    pad = (0, padded_size[1] - image_size[1], 0, padded_size[0] - image_size[0])
    ids = F.pad(ids[:, None].float(), pad, mode="replicate")[:, 0].long()
    return labels_to_onehot(resize_segmap(ids, feature_size), num_styles)


def regional_adain(content: Tensor, style_stats: Sequence[tuple[Tensor, Tensor]], regions: Tensor, *,
                   eps: float = 1e-5, unbiased: bool = True) -> Tensor:
    r"""AdaIN with one style per region and per-region content statistics.

    .. math::
        \mathrm{out} = \sum_k m_k \Big(\sigma_k\,\frac{x - \mu(x|m_k)}{\sigma(x|m_k)} + \mu_k\Big)

    with :math:`\mu(x|m_k), \sigma(x|m_k)` the channel statistics of the content over region
    :math:`m_k` (``n − 1`` in the variance when ``unbiased``, ``eps`` added to it) and
    :math:`(\mu_k, \sigma_k)` the k-th style's statistics. Empty regions contribute nothing.

    Args:
        content: ``(N, C, h, w)`` features.
        style_stats: K pairs ``(mean, std)``, each ``(N, C, 1, 1)`` (``N`` may be 1).
        regions: ``(N, K, h, w)`` hard one-hot regions (``N`` may be 1).
        eps: added to the region variances.
        unbiased: divide by ``n − 1`` (pytorch-AdaIN's convention).

    Returns:
        ``(N, C, h, w)`` stylised features.

    Example:
        >>> x, regions = torch.randn(1, 4, 6, 6), torch.zeros(1, 2, 6, 6)
        >>> regions[:, 0, :, :3] = 1; regions[:, 1, :, 3:] = 1
        >>> stats = [(torch.full((1, 4, 1, 1), 5.0), torch.ones(1, 4, 1, 1)),
        ...          (torch.zeros(1, 4, 1, 1), torch.ones(1, 4, 1, 1))]
        >>> out = regional_adain(x, stats, regions)
        >>> round(out[..., :3].mean().item(), 4), abs(out[..., 3:].mean().item()) < 1e-5
        (5.0, True)
    """
    sizes = check_shape(content, ("N", "C", "h", "w"), "regional_adain content")
    check_shape(regions, ("N'", len(style_stats), sizes["h"], sizes["w"]), "regional_adain regions")
    out = torch.zeros_like(content)
    for k, (s_mean, s_std) in enumerate(style_stats):
        m = regions[:, k:k + 1].to(content.dtype)
        n = m.sum((2, 3), keepdim=True)
        mean = (content * m).sum((2, 3), keepdim=True) / n.clamp_min(1)
        var = ((content - mean) * m).square().sum((2, 3), keepdim=True) / (n - int(unbiased)).clamp_min(1)
        scale = s_std * (var + eps).rsqrt()
        out = out + m * torch.addcmul(s_mean - mean * scale, content, scale)
    return out
