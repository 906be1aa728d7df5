"""Hard semantic maps as class ids: the compact form of a one-hot map, and convolutions on it.

A one-hot map of ``L`` classes spends ``L`` floats per pixel to say one integer. Layers that know
this compute on the ids directly, with the same result up to float rounding:

- a convolution of a one-hot map is a sum of weight slices picked by the ids under the kernel
  window (:func:`label_conv2d`, an embedding bag: ``k²·C_out`` additions per pixel instead of
  ``k²·L·C_out`` multiply-adds);
- it depends only on the window of ids, and a label map made of regions has few distinct windows
  (:func:`label_windows`), so it can run once per distinct window (:func:`window_conv`) and be
  painted back; a second convolution on top depends only on the arrangement of windows (the
  patch), likewise few. :class:`condnorm.SPADE` uses both.

:class:`SemanticMap` carries the ids (plus dense channels such as instance edges) through the
networks in place of the dense map.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._check import check_shape
from .functional import labels_to_onehot, resize_segmap
from .graph_mode import exporting_onnx, tracing_onnx

__all__ = ["LabelWindows", "SemanticMap", "bag_sum", "fold_binary_extra", "label_conv2d",
           "label_windows", "window_conv"]

_INT64_LIMIT = 2**63


class SemanticMap(NamedTuple):
    """A hard (one-hot) semantic map stored as class ids, optionally followed by dense channels.

    It stands for the ``L``-channel map ``cat([one_hot(ids, L - E), extra], dim=1)`` without
    building it; ``E`` extra channels carry what is not a class (SPADE's instance-boundary
    channel). :class:`condnorm.SPADE` and the SPADE generator take it wherever they take the dense
    map, and compute the same result faster.

    Attributes:
        ids: ``(N, H, W)`` integer class ids in ``[0, L - E)``.
        extra: ``(N, E, H, W)`` floating channels placed after the one-hot ones, or ``None``.
        windows: the distinct label windows of the folded ids (:func:`fold_binary_extra`), when
            a caller computed them once for several layers (:meth:`with_windows`; the SPADE
            generator does, per resolution); ``None`` lets each layer find them.

    Example:
        >>> sm = SemanticMap(torch.tensor([[[0, 2], [1, 1]]]))
        >>> sm.to_dense(3)[0, :, 0, 1]
        tensor([0., 0., 1.])
        >>> SemanticMap.from_dense(sm.to_dense(3)).ids.equal(sm.ids)
        True
    """

    ids: Tensor
    extra: Tensor | None = None
    windows: LabelWindows | None = None

    @property
    def num_extra(self) -> int:
        """E, the number of dense channels after the one-hot block."""
        return 0 if self.extra is None else self.extra.shape[1]

    def resize(self, size: tuple[int, int] | torch.Size) -> SemanticMap:
        """Nearest-resize the ids and the extra channels to ``size = (H, W)`` (itself if they match)."""
        if tuple(self.ids.shape[-2:]) == tuple(size):
            return self
        extra = None if self.extra is None else resize_segmap(self.extra, size)
        return SemanticMap(resize_segmap(self.ids, size), extra)

    def with_windows(self, kernel_size: int | tuple[int, int]) -> SemanticMap:
        """The map with :attr:`windows` found for ``kernel_size``, for the layers that share it.

        Itself unchanged when the ids cannot be folded (extra channels other than 0/1).

        Example:
            >>> sm = SemanticMap(torch.zeros(1, 8, 8, dtype=torch.long)).with_windows(3)
            >>> sm.windows.windows.shape
            torch.Size([9, 9])
        """
        ids = _folded_ids(self)
        windows = None if ids is None else label_windows(ids, kernel_size)
        return self if windows is None else self._replace(windows=windows)

    def to_dense(self, num_channels: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """The ``(N, num_channels, H, W)`` map it stands for: ``num_channels - E`` one-hot channels, extra."""
        onehot = labels_to_onehot(self.ids, num_channels - self.num_extra, dtype=dtype)
        return onehot if self.extra is None else torch.cat([onehot, self.extra.to(dtype)], dim=1)

    @staticmethod
    def from_dense(segmap: Tensor) -> SemanticMap | None:
        """Recognise a hard one-hot map (optionally followed by one dense channel) and return its ids.

        Tries "all ``L`` channels one-hot" first, then "the first ``L - 1`` one-hot, the last one
        dense" (SPADE's instance edges). The check reads the data (a few reductions over the map),
        so it is for eager code; it returns ``None`` for soft maps, which keep the dense path.

        Args:
            segmap: ``(N, L, H, W)`` floating map.

        Returns:
            The equivalent :class:`SemanticMap`, or ``None`` if no split is a hard one-hot map.

        Example:
            >>> SemanticMap.from_dense(torch.full((1, 2, 2, 2), 0.5)) is None
            True
        """
        check_shape(segmap, ("N", "L", "H", "W"), "SemanticMap.from_dense segmap")
        for extra in (0, 1):
            onehot = segmap[:, : segmap.shape[1] - extra]
            if onehot.shape[1] == 0:
                break
            low, high = torch.aminmax(onehot, dim=1)
            if bool((low >= 0).all()) and bool((high == 1).all()) and bool((onehot.sum(1) == 1).all()):
                return SemanticMap(onehot.argmax(1), segmap[:, onehot.shape[1]:] if extra else None)
        return None


def _tap_table(weight: Tensor) -> Tensor:
    """The ``((1 + L)·k², C_out)`` table whose row ``(id + 1)·k² + tap`` is ``weight[:, id, tap]``.

    The first ``k²`` rows are zero: id ``-1`` stands for "outside the map" (zero padding).
    """
    out_c, in_c, kh, kw = weight.shape
    return F.pad(weight.permute(1, 2, 3, 0).reshape(in_c * kh * kw, out_c), (0, 0, kh * kw, 0))


def bag_sum(bags: Tensor, table: Tensor) -> Tensor:
    """Sum the rows of ``table`` named by each bag: ``out[b] = Σ_j table[bags[b, j]]``.

    ``F.embedding_bag(mode="sum")``, whose gradient is a scatter-add into ``table``. While an ONNX
    exporter runs it is a gather followed by a sum instead: both exporters lower
    ``embedding_bag`` to a ``Loop`` node that onnxruntime runs ~10× slower than the two ops.

    Args:
        bags: ``(B, J)`` integer row indices into ``table``.
        table: ``(R, C)``.

    Returns:
        ``(B, C)``.

    Example:
        >>> bag_sum(torch.tensor([[0, 2], [1, 1]]), torch.tensor([[1.0], [10.0], [100.0]]))
        tensor([[101.],
                [ 20.]])
    """
    if exporting_onnx():
        return F.embedding(bags, table).sum(1)
    return F.embedding_bag(bags, table, mode="sum")


def _window_rows(padded: Tensor, kh: int, kw: int) -> Tensor:
    """``(N, H, W, kh·kw)`` the row-major ``kh×kw`` window at every pixel of a padded ``(N, H', W')`` map.

    ``unfold`` (a view); shifted slices while the TorchScript-based ONNX exporter runs (it
    cannot unfold a map of dynamic size).
    """
    if tracing_onnx():
        h, w = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
        return torch.stack([padded[:, y:y + h, x:x + w] for y in range(kh) for x in range(kw)], dim=-1)
    return padded.unfold(1, kh, 1).unfold(2, kw, 1).flatten(-2)


def _bags(window_ids: Tensor, taps: int) -> Tensor:
    """Rows of :func:`_tap_table` for windows of ``id + 1`` values (0 outside), one bag per window."""
    return window_ids * taps + torch.arange(taps, device=window_ids.device)


def label_conv2d(labels: Tensor | SemanticMap, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Convolve the one-hot map of ``labels`` with ``weight`` ('same' zero padding), without building it.

    .. math::
        \mathrm{out}_{:,p} = b + \sum_{k \in \mathrm{window}} W_{:,\,\mathrm{id}(p+k),\,k}
        \;\big(+\ \mathrm{conv}(\mathrm{extra}, W_{:, L-E:})\big)

    Pixels outside the map contribute nothing (zero padding). The window sums run as one
    ``F.embedding_bag(mode="sum")`` over the weight slices (:func:`_tap_table`), so the weight's
    gradient is a scatter-add; equal to ``F.conv2d(one_hot, weight, bias, padding=k // 2)`` up to
    float rounding. It has static shapes (fit for tracing and compiling); the result is laid out
    channels-last in memory.

    Args:
        labels: ``(N, H, W)`` integer ids in ``[0, L)``, or a :class:`SemanticMap` with ids in
            ``[0, L - E)`` and ``E`` extra channels.
        weight: ``(C_out, L, kh, kw)`` with odd ``kh``, ``kw``.
        bias: ``(C_out,)`` or ``None``.

    Returns:
        ``(N, C_out, H, W)``.

    Example:
        >>> ids, w = torch.randint(5, (2, 8, 8)), torch.randn(4, 5, 3, 3)
        >>> dense = F.conv2d(F.one_hot(ids, 5).permute(0, 3, 1, 2).float(), w, padding=1)
        >>> torch.allclose(label_conv2d(ids, w), dense, atol=1e-5)
        True
    """
    ids, extra = (labels.ids, labels.extra) if isinstance(labels, SemanticMap) else (labels, None)
    out_c, in_c, kh, kw = weight.shape
    num_ids = in_c - (0 if extra is None else extra.shape[1])
    padded = F.pad(ids.long() + 1, (kw // 2, kw // 2, kh // 2, kh // 2))
    bags = _bags(_window_rows(padded, kh, kw).reshape(-1, kh * kw), kh * kw)
    out = bag_sum(bags, _tap_table(weight[:, :num_ids]))
    out = out.view(*ids.shape, out_c).permute(0, 3, 1, 2)
    if bias is not None:
        out = out + bias.view(-1, 1, 1)
    if extra is not None:
        out = out + F.conv2d(extra.to(weight.dtype), weight[:, num_ids:], padding=(kh // 2, kw // 2))
    return out


def window_conv(windows: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The convolution of a one-hot map at the centre of each given window of ids.

    Args:
        windows: ``(V, kh·kw)`` each window's ``id + 1`` per tap, row-major, 0 outside the map
            (:attr:`LabelWindows.windows`).
        weight: ``(C_out, L, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.

    Returns:
        ``(V, C_out)``.

    Example:
        >>> w = torch.randn(4, 3, 3, 3)
        >>> window_conv(torch.full((1, 9), 2), w).allclose(w[:, 1].sum((1, 2)))  # all taps class 1
        True
    """
    out = bag_sum(_bags(windows, weight.shape[-2] * weight.shape[-1]), _tap_table(weight))
    return out if bias is None else out + bias


def _folded_ids(labels: SemanticMap, max_extra: int = 4) -> Tensor | None:
    """``id · 2^E + Σ_i e_i 2^i`` per pixel (the ids :func:`fold_binary_extra` gives), or None.

    None when there are more than ``max_extra`` extra channels or one holds values other than 0
    and 1 (a check that reads the data, so an ONNX graph does not make it).
    """
    if labels.extra is None:
        return labels.ids.long()
    extra, num_extra = labels.extra, labels.num_extra
    if num_extra > max_extra:
        return None
    if not exporting_onnx() and not bool(((extra == 0) | (extra == 1)).all()):
        return None
    powers = 2 ** torch.arange(num_extra, device=extra.device)
    return labels.ids.long() * 2**num_extra + (extra.long() * powers.view(1, -1, 1, 1)).sum(1)


def fold_binary_extra(labels: SemanticMap, weight: Tensor,
                      max_extra: int = 4) -> tuple[Tensor, Tensor] | None:
    """Absorb 0/1 extra channels into the ids, for a convolution of the map with ``weight``.

    A pixel of class ``l`` with extra bits ``e_i`` becomes class ``l·2^E + Σ_i e_i 2^i`` of
    ``L·2^E`` classes, whose weight is ``W_l + Σ_i e_i W_{L+i}``: convolving the one-hot map of the
    new ids with the new weight equals convolving the original map with ``weight``. The new ids
    do not depend on ``weight``, so layers of any width share them (and their windows).

    Args:
        labels: the map; its ids are in ``[0, L)``.
        weight: ``(C_out, L + E, kh, kw)``.
        max_extra: give up above this many extra channels (the class count doubles with each).

    Returns:
        ``(ids, weight)`` without extra channels, or ``None`` when an extra channel holds values
        other than 0 and 1, or there are more than ``max_extra`` of them. The 0/1 check reads the
        data, so an ONNX graph does not make it: its caller feeds 0/1 extra channels
        (:class:`~models.app.export.runtime.OnnxGenerator` checks them).

    Example:
        >>> sm = SemanticMap(torch.tensor([[[0, 1]]]), torch.tensor([[[[1.0, 0.0]]]]))
        >>> ids, w = fold_binary_extra(sm, torch.randn(4, 3, 1, 1))
        >>> ids.tolist(), tuple(w.shape)
        ([[[1, 2]]], (4, 4, 1, 1))
    """
    ids = _folded_ids(labels, max_extra)
    if ids is None or labels.extra is None:
        return None if ids is None else (ids, weight)
    num_extra = labels.num_extra
    num_ids = weight.shape[1] - num_extra
    powers = 2 ** torch.arange(num_extra, device=weight.device)
    bits = ((torch.arange(2**num_extra, device=weight.device)[:, None] // powers) % 2).to(weight.dtype)
    extra_sums = torch.einsum("ceyx,be->cbyx", weight[:, num_ids:], bits)  # (C_out, 2^E, kh, kw)
    return ids, (weight[:, :num_ids, None] + extra_sums[:, None]).flatten(1, 2)


class LabelWindows(NamedTuple):
    """The distinct label windows of a hard map, and the distinct arrangements of windows.

    For a ``k×k`` kernel, the first convolution of the one-hot map depends at each pixel only on
    the ``k×k`` window of ids around it, and a second ``k×k`` convolution on the result only on the
    ``k×k`` arrangement of those windows, the ``(2k−1)²`` patch. Label maps are made of regions,
    so a 256² map has a few thousand distinct patches: computing both convolutions once per
    distinct window/patch and painting the results back is exact and cuts SPADE's FLOPs by the
    ratio of pixels to patches.

    Attributes:
        windows: ``(V, k²)`` each distinct window's ``id + 1`` per tap (0 outside the map).
        pixel_window: ``(N, H, W)`` the index in ``[0, V)`` of the window centred at each pixel.
        patches: ``(U, k²)`` each distinct patch's ``window index + 1`` per tap (0 where that
            window's centre is outside the map), or ``None`` if the keys would overflow int64.
        pixel_patch: ``(N, H, W)`` the index in ``[0, U)`` of each pixel's patch, or ``None``.
    """

    windows: Tensor
    pixel_window: Tensor
    patches: Tensor | None
    pixel_patch: Tensor | None


def _powers(base: int, count: int, device: torch.device) -> Tensor:
    return base ** torch.arange(count, device=device)


def _distinct_windows(grid: Tensor, kh: int, kw: int) -> tuple[Tensor, Tensor] | None:
    """Number the distinct ``kh×kw`` windows of a non-negative integer grid, zero-padded ('same').

    Keys are exact: each row segment of ``kw`` values is a base-``(max + 1)`` number, numbered by
    ``torch.unique``; each stack of ``kh`` segment numbers likewise. ``None`` if a key would not
    fit in int64. Returns the window index per pixel and each window's values ``(V, kh·kw)``.

    While an ONNX exporter runs, the windows are numbered by ``torch.unique(dim=0)`` on the
    ``(pixels, kh·kw)`` rows instead (ONNX ``Unique`` with an axis, fast in onnxruntime, ~10×
    slower than the keys in eager PyTorch): no value of the data becomes a Python number, so the
    graph holds for any map, and it never overflows.
    """
    padded = F.pad(grid, (kw // 2, kw // 2, kh // 2, kh // 2))
    if exporting_onnx():
        rows = _window_rows(padded, kh, kw).reshape(-1, kh * kw)
        values, inverse = torch.unique(rows, dim=0, return_inverse=True)
        return inverse.view(grid.shape), values
    base = int(grid.max()) + 1
    if base**kw >= _INT64_LIMIT:
        return None
    seg_keys = (padded.unfold(2, kw, 1) * _powers(base, kw, grid.device)).sum(-1)
    seg_values, segs = torch.unique(seg_keys, return_inverse=True)
    count = seg_values.numel()
    if count**kh >= _INT64_LIMIT:
        return None
    keys = (segs.unfold(1, kh, 1) * _powers(count, kh, grid.device)).sum(-1)
    window_keys, inverse = torch.unique(keys, return_inverse=True)
    rows = seg_values[(window_keys[:, None] // _powers(count, kh, grid.device)) % count]
    values = (rows[..., None] // _powers(base, kw, grid.device)) % base
    return inverse, values.flatten(1)


def label_windows(ids: Tensor, kernel_size: int | tuple[int, int]) -> LabelWindows | None:
    """Find the distinct windows and patches of an id map (see :class:`LabelWindows`).

    Reads the data (``torch.unique``), so it is for eager code and ONNX graphs (ONNX ``Unique``);
    ``torch.compile`` and tracing to TorchScript would break or freeze the graph on it.

    Args:
        ids: ``(N, H, W)`` non-negative integer ids.
        kernel_size: the convolutions' odd kernel size.

    Returns:
        The windows, or ``None`` if even the window keys would overflow int64.

    Example:
        >>> lw = label_windows(torch.zeros(1, 8, 8, dtype=torch.long), 3)
        >>> lw.windows.shape[0], lw.patches.shape[0]  # 9 border cases of the window, 25 of the patch
        (9, 25)
    """
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    level1 = _distinct_windows(ids.long() + 1, kh, kw)
    if level1 is None:
        return None
    pixel_window, windows = level1
    level2 = _distinct_windows(pixel_window + 1, kh, kw)
    pixel_patch, patches = (None, None) if level2 is None else level2
    return LabelWindows(windows, pixel_window, patches, pixel_patch)
