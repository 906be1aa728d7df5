"""Pure functions behind the layers: statistics, AdaIN, modulation, label maps.

Everything here is stateless and works on plain tensors; the modules in condnorm are thin
wrappers that hold parameters and call these functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ._check import check_finite, check_ids, check_shape
from .autograd import AdaINContent, MeanStd, adain_composite, moments
from .graph_mode import exporting_onnx, exporting_program

__all__ = [
    "adain",
    "calc_mean_std",
    "film",
    "inject_noise",
    "labels_to_onehot",
    "mix_table",
    "modulate",
    "modulated_conv2d",
    "paint_columns",
    "region_average_pool",
    "region_broadcast",
    "resize_segmap",
]

StyleSpec = Union[Tensor, tuple[Tensor, Tensor]]  # noqa: UP007 (runtime alias)
NoiseSource = Union[Tensor, Callable[[int, int, int], Tensor], torch.Generator, None]  # noqa: UP007


def _counts(feat: Tensor, unbiased: bool) -> tuple[int, int]:
    """``(n, n - u)``: the spatial elements per channel and the variance's divisor (checked positive)."""
    n = math.prod(feat.shape[2:])
    if n - int(unbiased) <= 0:
        raise ValueError(f"calc_mean_std: {n} spatial element(s) is too few for "
                         f"{'unbiased' if unbiased else 'biased'} statistics")
    return n, n - int(unbiased)


def _scalar(value: float) -> Tensor:
    """A float as a 0-d float64 tensor (cast to the operands' dtype where it is used, like a float)."""
    return torch.tensor(value, dtype=torch.float64)


def calc_mean_std(feat: Tensor, eps: float = 1e-5, unbiased: bool = False) -> tuple[Tensor, Tensor]:
    r"""Per-sample, per-channel mean and standard deviation of a feature map.

    .. math::
        \mu = \frac{1}{n}\sum x, \qquad \sigma = \sqrt{\frac{1}{n - u}\sum (x-\mu)^2 + \epsilon}

    with :math:`n = H W` and :math:`u = 1` when ``unbiased`` (the pytorch-AdaIN convention)
    else 0 (``instance_norm``'s convention). The statistics are computed in two passes
    (mean, then the norm of the centred map), which is exact and avoids ``torch.var``'s slow
    CPU kernel. The backward is analytic (one fused pass,
    ``∂L/∂x = g_μ/n + g_σ (x − μ)/(σ (n − u))``; higher orders differentiate the composite), in
    eager mode and under ``torch.compile``; while TorchScript traces or ``torch.export`` (ONNX)
    exports, the same formula runs as plain operators.

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
    n, divisor = _counts(feat, unbiased)
    if exporting_program():
        return moments(feat, eps, divisor)
    return MeanStd.apply(feat, _scalar(eps), n, divisor)


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
    (``x * scale + shift``), so the content is read twice for its statistics (mean, then the
    centred norm; never ``torch.var``, which is ~100× slower than ``mean`` on CPU) and once to
    write the result. A custom autograd function gives the analytic backward (two reductions and
    one fused pass; when the backward itself is recorded, as for a gradient penalty, the
    composite formula is differentiated instead), in eager mode and under ``torch.compile``
    (dynamo traces it, inductor fuses both directions: 1.6× faster forward+backward than letting
    it differentiate the composite). While TorchScript traces or ``torch.export`` exports (the
    ONNX exporters), the same formula runs as plain operators, which they record as ordinary
    nodes.

    Recompilation under ``torch.compile(dynamic=True)``: none across shapes in the graph dynamo
    captures (tested), but dynamo keeps one graph per grad mode (it guards the global grad mode
    of every compiled function), its duck sizing adds one when sizes that were equal (H = W)
    first differ, and inductor's CPU code generation one per side of 4096 spatial elements (it
    switches to an accurate-summation helper for longer float sums).

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
        check_finite(s_mean, "adain style mean")
        check_finite(s_std, "adain style std")
    else:
        check_shape(style, ("N", "C", "H'", "W'"), "adain style", sizes)
        s_mean, s_std = calc_mean_std(style, eps, unbiased)
    n, divisor = _counts(content, unbiased)
    if exporting_program():
        return adain_composite(content, s_mean, s_std, eps, divisor, alpha)
    # eps and α go in as 0-d tensors: dynamo (dynamic=True) makes float arguments symbolic, and a
    # symbolic float cannot enter an autograd.Function's subgraph.
    return AdaINContent.apply(content, s_mean, s_std, _scalar(eps), n, divisor, _scalar(alpha))


def modulate(normalized: Tensor, gamma: Tensor, beta: Tensor, *, plain_gamma: bool = False) -> Tensor:
    r"""Apply a predicted affine transform to a normalised map.

    .. math::
        \mathrm{out} = \hat x \,(1 + \gamma) + \beta \quad\text{or, with ``plain_gamma``,}\quad
        \hat x\,\gamma + \beta

    The ``1 + γ`` form (SPADE, SEAN, BigGAN) makes a zero-initialised predictor the identity;
    the plain form is CLADE's and Dumoulin et al.'s CIN.

    Args:
        normalized: ``(N, C, H, W)``, or any shape the two below broadcast to (tokens ``(N, T, C)``).
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


def film(x: Tensor, gamma: Tensor, beta: Tensor, *, channel_dim: int = 1, plain_gamma: bool = True) -> Tensor:
    r"""Feature-wise linear modulation: one scale and shift per sample and channel, any layout.

    .. math::
        \mathrm{out} = \gamma \odot x + \beta \quad\text{or}\quad (1 + \gamma) \odot x + \beta

    ``γ`` and ``β`` are ``(N, C)`` and broadcast over every other dimension of ``x``: the channel
    axis is ``channel_dim`` (1 for ``(N, C, ...)``, -1 for channels-last ``(N, T, C)``). This is the
    step every vector-conditioned layer ends with (AdaGN, adaLN, FiLM); it calls :func:`modulate`.

    Args:
        x: ``(N, C, *)`` or ``(N, *, C)``.
        gamma: ``(N, C)`` scale.
        beta: ``(N, C)`` shift.
        channel_dim: 1 (channels first) or -1 (channels last).
        plain_gamma: ``γ x + β`` (FiLM's form, the default) instead of ``(1 + γ) x + β``.

    Returns:
        ``x``'s shape.

    Raises:
        ValueError: for a ``channel_dim`` other than 1 or -1.

    Example:
        >>> x = torch.ones(2, 5, 3)  # (N, T, C)
        >>> film(x, torch.full((2, 3), 2.0), torch.ones(2, 3), channel_dim=-1)[0, 0]
        tensor([3., 3., 3.])
    """
    if channel_dim not in (1, -1):
        raise ValueError(f"film: channel_dim must be 1 (channels first) or -1 (channels last), "
                         f"got {channel_dim}")
    for _ in range(x.dim() - 2):  # unsqueeze (not view): traced graphs keep the batch dynamic
        gamma, beta = (gamma.unsqueeze(-1), beta.unsqueeze(-1)) if channel_dim == 1 else \
            (gamma.unsqueeze(1), beta.unsqueeze(1))
    return modulate(x, gamma, beta, plain_gamma=plain_gamma)


def _fir_1331(x: Tensor, channels: int, pad: int, gain: float) -> Tensor:
    """StyleGAN2's resampling low-pass, ``[1, 3, 3, 1]``² / 64 · ``gain``, after ``pad`` zeros each side."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (torch.outer(taps, taps) * (gain / 64.0)).expand(channels, 1, 4, 4)
    return F.conv2d(F.pad(x, (pad, pad, pad, pad)), kernel, groups=channels)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True,
                     up: int = 1, down: int = 1, eps: float = 1e-8, grouped: bool | None = None) -> Tensor:
    r"""StyleGAN2's modulated convolution: per-sample weights scaled by the styles, then demodulated.

    .. math::
        w'_{n,o,i,k} = s_{n,i}\, w_{o,i,k}, \qquad
        w''_{n,o,i,k} = w'_{n,o,i,k} \Big/ \sqrt{\textstyle\sum_{i,k} w'^2_{n,o,i,k} + \epsilon}

    Both forms run the whole batch as one convolution, never a loop over samples:

    - the **activation form** (the default, StyleGAN2's ``fused_modconv=False``): ``x · s``, one
      batched convolution with the shared weight, then the per-output demodulation coefficient
      ``d_{n,o} = (Σ_i s²_{n,i} Σ_k w²_{o,i,k} + ε)^{-1/2}``, computed as one ``(N, I) @ (I, O)``
      product. The weight is read once for the batch; no per-sample weights exist. It traces,
      compiles and exports with a dynamic batch.
    - the **grouped form** (``grouped=True``, StyleGAN2's ``fused_modconv=True``): the per-sample
      modulated, demodulated weights and one grouped convolution (the batch folded into the
      channels, ``groups = N``); exporting it would freeze the batch size, so ``grouped=None``
      never picks it.

    The two agree to float rounding (tested). On this project's CPUs the activation form is the
    faster (``benchmarks/modulated_conv.py``).

    ``up=2`` is StyleGAN2's upsampling convolution (``conv2d_resample`` with a 3×3 kernel): a
    stride-2 transposed convolution with the (unflipped) modulated weights, output ``2H + 1``,
    followed by the ``[1, 3, 3, 1]`` ⊗ ``[1, 3, 3, 1]`` / 64 low-pass with gain 4 and one pixel of
    zero padding each side, output ``2H``. ``down=2`` is its downsampling path: the same low-pass
    (gain 1) after two pixels of zero padding each side, then the convolution with stride 2 and no
    padding, output ``H / 2`` (even ``H``). Padding is ``k // 2`` otherwise.

    Args:
        x: ``(N, I, H, W)``.
        weight: ``(O, I, k, k)`` shared weights (odd ``k``; ``k = 3`` to resample).
        styles: ``(N, I)`` per-sample input-channel scales.
        demodulate: divide each output channel by its weight norm (StyleGAN2); off for toRGB.
        up: 1 or 2.
        down: 1 or 2 (not both 2).
        eps: added to the squared norm (StyleGAN2's 1e-8).
        grouped: one grouped convolution (True), or the activation form (False or None).

    Returns:
        ``(N, O, H·up/down, W·up/down)``.

    Raises:
        ValueError: for other ``up``/``down`` factors, or resampling with a kernel other than 3×3.

    Example:
        >>> x, w, s = torch.randn(2, 4, 8, 8), torch.randn(6, 4, 3, 3), torch.rand(2, 4) + 0.5
        >>> modulated_conv2d(x, w, s).shape, modulated_conv2d(x, w, s, up=2).shape
        (torch.Size([2, 6, 8, 8]), torch.Size([2, 6, 16, 16]))
        >>> modulated_conv2d(x, w, s, down=2).shape
        torch.Size([2, 6, 4, 4])
    """
    out_ch, in_ch, kh, kw = (int(d) for d in weight.shape)  # static: exporters need the kernel shapes
    if (up, down) not in ((1, 1), (2, 1), (1, 2)) or (up * down > 1 and (kh, kw) != (3, 3)):
        raise ValueError(f"modulated_conv2d: up/down must be 1, or one of them 2 with a 3×3 kernel, got "
                         f"up={up}, down={down} and a {kh}×{kw} kernel")
    if down == 2:
        x = _fir_1331(x, in_ch, pad=2, gain=1.0)
    stride, padding = (2, 0) if down == 2 else (1, kh // 2)
    # Σ_{i,k} (s_i w_oik)² = Σ_i s_i² Σ_k w_oik²: one (N, I) @ (I, O) product, no per-sample weights.
    dcoefs = torch.rsqrt(styles.square() @ weight.square().sum((2, 3)).t() + eps) if demodulate else None  # (N, O)
    if not grouped:
        x = x * styles[:, :, None, None]
        x = F.conv2d(x, weight, stride=stride, padding=padding) if up == 1 else \
            F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        x = x if dcoefs is None else x * dcoefs[:, :, None, None]
    else:
        n = x.shape[0]
        w = weight.unsqueeze(0) * styles[:, None, :, None, None]  # (N, O, I, k, k)
        if dcoefs is not None:
            w = w * dcoefs[:, :, None, None, None]
        x = x.reshape(1, -1, *x.shape[2:])
        if up == 1:
            x = F.conv2d(x, w.reshape(-1, in_ch, kh, kw), stride=stride, padding=padding, groups=n)
        else:
            x = F.conv_transpose2d(x, w.transpose(1, 2).reshape(-1, out_ch, kh, kw), stride=2, groups=n)
        x = x.reshape(n, out_ch, *x.shape[2:])
    return x if up == 1 else _fir_1331(x, out_ch, pad=1, gain=4.0)


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


def paint_columns(table: Tensor, index: Tensor) -> Tensor:
    """Column ``index[n, h, w]`` of a ``(C, K)`` table at every pixel: ``(N, C, H, W)``.

    One ``index_select`` along the columns, whose result is ``(C, N, H, W)`` in memory: every
    channel plane is contiguous (an embedding lookup would give channels-last pixels, which make
    the elementwise ops after it several times slower), and the backward is one ``index_add``.
    In an ONNX graph it is a row gather of the transposed table and a transpose, which
    onnxruntime runs ~4× faster than a ``Gather`` along the columns.

    Example:
        >>> paint_columns(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[[2, 0]]]))
        tensor([[[[3., 1.]]]])
    """
    if exporting_onnx():
        return F.embedding(index, table.t()).permute(0, 3, 1, 2)
    n, h, w = index.shape
    return table.index_select(1, index.flatten()).view(-1, n, h, w).transpose(0, 1)


def region_broadcast(segmap: Tensor, values: Tensor) -> Tensor:
    r"""Paint one vector per class into a map: the weighted sum of the class vectors per pixel.

    .. math::
        \mathrm{out}_{n,:,h,w} = \sum_l m_{n,l,h,w}\, v_{(n,)\,l,:}

    For a one-hot map this is a table lookup (each pixel gets its class's vector; pixels of no
    class get 0); soft maps blend the vectors. Integer id maps are looked up directly. This is
    how CLADE paints its per-class γ, β and how SEAN paints its per-region styles, and the
    inverse of :func:`region_average_pool`.

    Args:
        segmap: ``(N, L, H, W)`` one-hot/soft map, or ``(N, H, W)`` integer ids in ``[0, L)``.
        values: ``(L, C)`` shared by the batch, or ``(N, L, C)`` per sample.

    Returns:
        ``(N, C, H, W)``.

    Raises:
        TypeError: if a 3-d ``segmap`` is not an integer tensor.
        ValueError: on mismatched N or L, a wrong rank, or ids outside ``[0, L)``.

    Example:
        >>> seg = labels_to_onehot(torch.tensor([[[0, 1], [1, 2]]]), 3)
        >>> region_broadcast(seg, torch.tensor([[1.0], [2.0], [3.0]]))[0, 0]
        tensor([[1., 2.],
                [2., 3.]])
    """
    if values.dim() not in (2, 3):
        raise ValueError(f"region_broadcast values: expected (L, C) or (N, L, C), got shape "
                         f"{tuple(values.shape)}")
    dims = ("L", "C") if values.dim() == 2 else ("N", "L", "C")
    sizes = check_shape(values, dims, "region_broadcast values")
    if segmap.dim() == 3:
        sizes = check_shape(segmap, ("N", "H", "W"), "region_broadcast segmap", sizes)
        check_ids(segmap, sizes["L"], "region_broadcast segmap")
        ids, table = segmap.long(), values
        if values.dim() == 3:  # sample n's table sits at rows [n L, (n + 1) L)
            ids = ids + torch.arange(sizes["N"], device=ids.device).view(-1, 1, 1) * sizes["L"]
            table = values.flatten(0, 1)
        return paint_columns(table.t().contiguous(), ids)
    check_shape(segmap, ("N", "L", "H", "W"), "region_broadcast segmap", sizes)
    out = torch.matmul(values.transpose(-1, -2), segmap.to(values.dtype).flatten(2))
    return out.unflatten(2, segmap.shape[-2:])


def region_average_pool(features: Tensor, segmap: Tensor) -> Tensor:
    r"""Masked mean of a feature map per class (SEAN's region-wise average pooling).

    .. math::
        \mathrm{out}_{n,l,:} = \frac{\sum_{h,w} m_{n,l,h,w}\, f_{n,:,h,w}}{\sum_{h,w} m_{n,l,h,w}}

    with ``m`` the map resized (nearest) to the features' size. A class absent from a sample
    (zero mask) gets the zero vector.

    Args:
        features: ``(N, D, H, W)``, e.g. a style encoder's output.
        segmap: ``(N, L, H', W')`` one-hot or soft map.

    Returns:
        ``(N, L, D)`` per-class style codes.

    Raises:
        ValueError: on a wrong rank or mismatched batch sizes.

    Example:
        >>> feats = torch.arange(4.0).view(1, 1, 2, 2)
        >>> seg = labels_to_onehot(torch.tensor([[[0, 0], [0, 1]]]), 3)
        >>> region_average_pool(feats, seg)
        tensor([[[1.],
                 [3.],
                 [0.]]])
    """
    sizes = check_shape(features, ("N", "D", "H", "W"), "region_average_pool features")
    check_shape(segmap, ("N", "L", "H'", "W'"), "region_average_pool segmap", {"N": sizes["N"]})
    masks = resize_segmap(segmap.to(features.dtype), features.shape[-2:]).flatten(2)  # (N, L, HW)
    sums = torch.bmm(masks, features.flatten(2).transpose(1, 2))  # (N, L, D)
    area = masks.sum(-1, keepdim=True).clamp_min(torch.finfo(masks.dtype).tiny)
    return sums / area


def mix_table(table: Tensor, condition: Tensor, *, batch_size: int | None = None,
              name: str = "condition") -> Tensor:
    r"""Pick or blend rows of a per-class table: the lookup behind CBN and CIN.

    .. math::
        \mathrm{out}_n = T_{c_n} \quad\text{(ids)}, \qquad
        \mathrm{out}_n = \sum_k w_{n,k}\, T_k \quad\text{(weights)}

    Class ids select a row; soft weights blend the rows (Dumoulin et al.'s style mixing is
    the convex case, ``Σ_k w_{n,k} = 1``; one-hot weights equal the id lookup).

    Args:
        table: ``(K, C)`` one row per class.
        condition: ``(N,)`` integer ids in ``[0, K)``, or ``(N, K)`` floating weights.
        batch_size: N expected by the caller (checked when given).
        name: the condition's name in error messages.

    Returns:
        ``(N, C)`` the selected or blended rows.

    Raises:
        TypeError: for floating ids or integer weights.
        ValueError: on a wrong rank, a batch or K mismatch, or ids outside ``[0, K)``.

    Example:
        >>> table = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
        >>> mix_table(table, torch.tensor([2, 0]))
        tensor([[ 3., 30.],
                [ 1., 10.]])
        >>> mix_table(table, torch.tensor([[0.5, 0.5, 0.0]]))
        tensor([[ 1.5000, 15.0000]])
    """
    sizes = {"K": table.shape[0]} if batch_size is None else {"K": table.shape[0], "N": batch_size}
    if condition.dim() == 1:
        check_shape(condition, ("N",), f"{name} ids", sizes)
        check_ids(condition, sizes["K"], f"{name} ids")
        return F.embedding(condition, table)
    check_shape(condition, ("N", "K"), f"{name} (ids (N,) or weights (N, K))", sizes)
    if not condition.is_floating_point():
        raise TypeError(f"{name}: (N, K) class weights must be floating point, got dtype "
                        f"{condition.dtype}; pass integer class ids as a 1-d (N,) tensor")
    return torch.matmul(condition.to(table.dtype), table)


def inject_noise(x: Tensor, scale: Tensor, noise: NoiseSource = None, *, name: str = "noise") -> Tensor:
    r"""Add SEAN's per-pixel noise: one :math:`N(0, 1)` value per pixel, scaled per channel.

    .. math::
        \mathrm{out} = x + n \cdot s, \qquad n \in \mathbb{R}^{N \times 1 \times H \times W}

    Args:
        x: ``(N, C, H, W)``.
        scale: per-channel scale ``(C,)``.
        noise: an explicit ``(N, 1, H, W)`` draw; a callable ``(N, H, W) → draw`` (how a
            generator hands each of its layers its own explicit draw, e.g. an exported graph's
            noise inputs); a ``torch.Generator`` (the draw happens on the generator's device, so
            a CPU generator gives the same values on any device); or ``None`` for torch's global
            generator.
        name: how errors name the argument.

    Returns:
        ``(N, C, H, W)``.

    Example:
        >>> x = torch.zeros(1, 2, 3, 3)
        >>> inject_noise(x, torch.tensor([0.0, 1.0]), torch.ones(1, 1, 3, 3))[0, :, 0, 0]
        tensor([0., 1.])
    """
    n, _, h, w = x.shape
    if callable(noise) and not isinstance(noise, (Tensor, torch.Generator)):
        noise = noise(n, h, w)
    if isinstance(noise, Tensor):
        check_shape(noise, ("N", 1, "H", "W"), name, {"N": n, "H": h, "W": w})
        draw = noise.to(x.dtype)
    elif noise is None:
        draw = torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)
    elif isinstance(noise, torch.Generator):
        draw = torch.randn(n, 1, h, w, generator=noise, device=noise.device, dtype=x.dtype).to(x.device)
    else:
        raise TypeError(f"{name}: expected a (N, 1, H, W) tensor, a callable giving one, a torch.Generator or None, "
                        f"got {type(noise).__name__}")
    return torch.addcmul(x, draw, scale.view(1, -1, 1, 1))
