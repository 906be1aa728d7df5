"""Pure functions behind the layers: statistics, AdaIN, modulation, label maps.

Everything here is stateless and works on plain tensors; the modules in condnorm are thin
wrappers that hold parameters and call these functions.
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ._check import check_ids, check_shape

__all__ = ["adain", "calc_mean_std", "labels_to_onehot", "modulate", "resize_segmap"]

StyleSpec = Union[Tensor, tuple[Tensor, Tensor]]  # noqa: UP007 (runtime alias)


def calc_mean_std(feat: Tensor, eps: float = 1e-5, unbiased: bool = False) -> tuple[Tensor, Tensor]:
    r"""Per-sample, per-channel mean and standard deviation of a feature map.

    .. math::
        \mu = \frac{1}{n}\sum x, \qquad \sigma = \sqrt{\frac{1}{n - u}\sum (x-\mu)^2 + \epsilon}

    with :math:`n = H W` and :math:`u = 1` when ``unbiased`` (the pytorch-AdaIN convention)
    else 0 (``instance_norm``'s convention). The statistics are computed in two passes
    (mean, then the norm of the centred map), which is exact and avoids ``torch.var``'s slow
    CPU kernel.

    Args:
        feat: feature map ``(N, C, *)`` with at least one spatial element (two if unbiased).
        eps: added to the variance before the square root.
        unbiased: divide by ``n - 1`` instead of ``n``.

    Returns:
        ``(mean, std)``, each ``(N, C, 1, ..., 1)`` (broadcastable against ``feat``).

    Example:
        >>> x = torch.randn(2, 3, 8, 8)
        >>> mean, std = calc_mean_std(x)
        >>> mean.shape, std.shape
        (torch.Size([2, 3, 1, 1]), torch.Size([2, 3, 1, 1]))
    """
    if feat.dim() < 3:
        raise ValueError(f"calc_mean_std: expected a feature map (N, C, H, W), got shape "
                         f"{tuple(feat.shape)}")
    flat = feat.flatten(2)
    n = flat.shape[-1]
    if n - int(unbiased) <= 0:
        raise ValueError(f"calc_mean_std: {n} spatial element(s) is too few for "
                         f"{'unbiased' if unbiased else 'biased'} statistics")
    mean = flat.mean(-1, keepdim=True)
    sq = torch.linalg.vector_norm(flat - mean, dim=-1, keepdim=True).square()
    std = (sq / (n - int(unbiased)) + eps).sqrt()
    view = feat.shape[:2] + (1,) * (feat.dim() - 2)
    return mean.view(view), std.view(view)


def adain(
    content: Tensor,
    style: StyleSpec,
    *,
    eps: float = 1e-5,
    unbiased: bool = False,
    alpha: float = 1.0,
) -> Tensor:
    r"""Adaptive instance normalization (Huang & Belongie, 2017).

    .. math::
        \mathrm{AdaIN}(x, y) = \sigma(y)\,\frac{x - \mu(x)}{\sigma(x)} + \mu(y),
        \qquad \mathrm{out} = \alpha\,\mathrm{AdaIN}(x, y) + (1 - \alpha)\,x

    The whole expression is folded into one per-channel affine map of ``content``
    (``x * scale + shift``), so the content is read once to take its statistics and once
    to write the result.

    Args:
        content: content features ``(N, C, H, W)``.
        style: style features ``(N, C, H', W')``, or a precomputed ``(mean, std)`` pair, each
            ``(N, C, 1, 1)`` (or ``(N, C)``).
        eps: added to the variances.
        unbiased: ``True`` reproduces the pytorch-AdaIN port exactly (``var`` with ``n - 1``,
            eps added to the variance); ``False`` matches ``instance_norm``.
        alpha: style strength; 0 returns the content features unchanged.

    Returns:
        Stylised features ``(N, C, H, W)``.

    Example:
        >>> c, s = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 8, 8) * 3 + 1
        >>> out = adain(c, s)
        >>> torch.allclose(calc_mean_std(out)[0], calc_mean_std(s)[0], atol=1e-5)
        True
    """
    sizes = check_shape(content, ("N", "C", "H", "W"), "adain content")
    if isinstance(style, (tuple, list)):
        if len(style) != 2:
            raise ValueError("adain: style must be a feature map or a (mean, std) pair")
        s_mean, s_std = (t.reshape(sizes["N"], sizes["C"], 1, 1) if t.dim() == 2 else t
                         for t in style)
        check_shape(s_mean, ("N", "C", 1, 1), "adain style mean", sizes)
        check_shape(s_std, ("N", "C", 1, 1), "adain style std", sizes)
    else:
        check_shape(style, ("N", "C", "H'", "W'"), "adain style", sizes)
        s_mean, s_std = calc_mean_std(style, eps, unbiased)
    c_mean, c_std = calc_mean_std(content, eps, unbiased)
    scale = s_std / c_std
    shift = s_mean - c_mean * scale
    if alpha != 1.0:
        scale = alpha * scale + (1.0 - alpha)
        shift = alpha * shift
    return torch.addcmul(shift, content, scale)


def modulate(normalized: Tensor, gamma: Tensor, beta: Tensor, *, plain_gamma: bool = False) -> Tensor:
    r"""Apply a predicted affine transform to a normalised map.

    .. math::
        \mathrm{out} = \hat x \,(1 + \gamma) + \beta \quad\text{or, with ``plain_gamma``,}\quad
        \hat x\,\gamma + \beta

    The ``1 + γ`` form (SPADE, SEAN, BigGAN) makes a zero-initialised predictor the identity;
    the plain form is CLADE's and Dumoulin et al.'s CIN.

    Args:
        normalized: ``(N, C, H, W)``.
        gamma: scale, broadcastable to ``normalized`` (``(N, C, 1, 1)`` or ``(N, C, H, W)``).
        beta: shift, broadcastable likewise.
        plain_gamma: use ``γ`` instead of ``1 + γ``.

    Returns:
        The modulated map, ``(N, C, H, W)``.

    Example:
        >>> x = torch.randn(2, 3, 4, 4)
        >>> torch.equal(modulate(x, torch.zeros(2, 3, 1, 1), torch.zeros(2, 3, 1, 1)), x)
        True
    """
    scale = gamma if plain_gamma else gamma + 1.0
    return torch.addcmul(beta, normalized, scale)


def resize_segmap(segmap: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Resize a label map to ``size`` with nearest-neighbour sampling (no-op if it matches).

    Nearest keeps one-hot maps one-hot and label ids exact.

    Args:
        segmap: ``(N, L, H', W')`` one-hot/soft map, or ``(N, H', W')`` integer ids.
        size: the target ``(H, W)``.

    Returns:
        The map at ``(H, W)``, same dtype and layout.

    Example:
        >>> resize_segmap(torch.zeros(1, 5, 8, 8), (4, 4)).shape
        torch.Size([1, 5, 4, 4])
    """
    if tuple(segmap.shape[-2:]) == tuple(size):
        return segmap
    if segmap.dim() == 3:
        return F.interpolate(segmap[:, None].float(), size=size, mode="nearest")[:, 0].to(segmap.dtype)
    return F.interpolate(segmap, size=size, mode="nearest")


def labels_to_onehot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Turn an id map into a one-hot map.

    Args:
        labels: ``(N, H, W)`` integer ids in ``[0, num_classes)``.
        num_classes: L.
        dtype: dtype of the result.

    Returns:
        ``(N, L, H, W)`` one-hot map.

    Raises:
        TypeError: if ``labels`` is not an integer tensor.
        ValueError: if ``labels`` is not 3-d or holds ids outside ``[0, L)``.

    Example:
        >>> labels_to_onehot(torch.tensor([[[0, 2]]]), 3)[0, :, 0, 1]
        tensor([0., 0., 1.])
    """
    check_shape(labels, ("N", "H", "W"), "labels")
    check_ids(labels, num_classes, "labels")
    return F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).to(dtype)
