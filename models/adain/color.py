"""Colour preservation for style transfer: CORAL colour alignment and luminance-only transfer.

Two recipes from Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016):

- **CORAL** (colour histogram matching): before the transfer, give the style image the content
  image's colour mean and covariance, so the stylised result inherits the content's palette.
- **Luminance-only**: run the transfer on the luminance channels only and put the content's
  chroma back afterwards (YUV, via :mod:`kornia.color`).
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_yuv, yuv_to_rgb
from torch import Tensor

from condnorm._check import check_shape

__all__ = ["coral", "match_luminance", "merge_luminance", "split_luminance"]


def _sqrtm(cov: Tensor, eps: float, inverse: bool) -> Tensor:
    """Matrix (inverse) square root of symmetric positive semi-definite ``(..., 3, 3)`` matrices."""
    evals, evecs = torch.linalg.eigh(cov)
    root = evals.clamp_min(eps).sqrt()
    if inverse:
        root = root.reciprocal()
    return evecs @ torch.diag_embed(root) @ evecs.transpose(-1, -2)


def _colour_stats(image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    pixels = image.flatten(2).double()
    mean = pixels.mean(-1, keepdim=True)
    centred = pixels - mean
    cov = centred @ centred.transpose(-1, -2) / pixels.shape[-1]
    return centred, mean, cov


def coral(source: Tensor, target: Tensor, *, eps: float = 1e-5) -> Tensor:
    r"""Give ``source`` the per-image colour mean and covariance of ``target`` (CORAL).

    .. math::
        \mathrm{out} = \Sigma_t^{1/2}\,\Sigma_s^{-1/2}\,(x_s - \mu_s) + \mu_t

    with :math:`\mu, \Sigma` the mean and covariance of the RGB values of each image. The
    result is not clamped, so its statistics match the target's exactly (up to ``eps``).

    Args:
        source: images to recolour ``(N, 3, H, W)`` (or ``(1, 3, H, W)``, broadcast).
        target: images whose colour statistics are taken ``(N, 3, H', W')`` (or ``N = 1``).
        eps: floor on the covariance eigenvalues (flat images).

    Returns:
        ``(N, 3, H, W)`` recoloured source.

    Example:
        >>> style, content = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 24, 24) * 0.5
        >>> out = coral(style, content)
        >>> torch.allclose(out.mean((2, 3)), content.mean((2, 3)), atol=1e-5)
        True
    """
    check_shape(source, ("N", 3, "H", "W"), "coral source")
    check_shape(target, ("N'", 3, "H'", "W'"), "coral target")
    xs, _, cov_s = _colour_stats(source)
    _, mean_t, cov_t = _colour_stats(target)
    transform = _sqrtm(cov_t, eps, inverse=False) @ _sqrtm(cov_s, eps, inverse=True)
    out = transform @ xs + mean_t
    batch = torch.broadcast_shapes(source.shape[:1], target.shape[:1])
    return out.to(source.dtype).view(*batch, *source.shape[1:])


def split_luminance(image: Tensor) -> tuple[Tensor, Tensor]:
    """Split RGB images into luminance ``(N, 1, H, W)`` and chroma ``(N, 2, H, W)`` (YUV).

    Example:
        >>> y, uv = split_luminance(torch.rand(2, 3, 8, 8))
        >>> y.shape, uv.shape
        (torch.Size([2, 1, 8, 8]), torch.Size([2, 2, 8, 8]))
    """
    yuv = rgb_to_yuv(image)
    return yuv[:, :1], yuv[:, 1:]


def merge_luminance(luminance: Tensor, chroma: Tensor) -> Tensor:
    """Inverse of :func:`split_luminance`: YUV channels back to RGB ``(N, 3, H, W)``.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(merge_luminance(*split_luminance(x)), x, atol=1e-5)
        True
    """
    return yuv_to_rgb(torch.cat([luminance, chroma], dim=1))


def match_luminance(style: Tensor, content: Tensor, *, eps: float = 1e-5) -> Tensor:
    r"""Grey style image whose luminance has the content's mean and standard deviation.

    .. math::
        Y' = \frac{\sigma_c}{\sigma_s}\,(Y_s - \mu_s) + \mu_c

    Args:
        style: ``(N, 3, H, W)`` RGB (or ``N = 1``).
        content: ``(N, 3, H', W')`` RGB (or ``N = 1``).
        eps: added to the variances.

    Returns:
        ``(N, 3, H, W)``: the matched luminance repeated on the three channels.

    Example:
        >>> match_luminance(torch.rand(1, 3, 8, 8), torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 3, 8, 8])
    """
    y_s, y_c = split_luminance(style)[0], split_luminance(content)[0]
    mean_s, var_s = y_s.mean((2, 3), keepdim=True), y_s.var((2, 3), correction=0, keepdim=True)
    mean_c, var_c = y_c.mean((2, 3), keepdim=True), y_c.var((2, 3), correction=0, keepdim=True)
    y = (y_s - mean_s) * ((var_c + eps) / (var_s + eps)).sqrt() + mean_c
    return y.expand(-1, 3, -1, -1)
