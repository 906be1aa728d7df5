"""Hard semantic maps as class ids: the exact, compact form of a one-hot map, and convolutions on it.

A one-hot map of ``L`` classes spends ``L`` floats per pixel to say one integer. Layers that know
this (SPADE's first convolution, CLADE's lookup) compute on the ids directly: a convolution of a
one-hot map is a sum of weight slices picked by the ids under the kernel window, an embedding-bag
lookup that costs ``k²·C_out`` additions per pixel instead of ``k²·L·C_out`` multiply-adds, with
exactly the same result.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._check import check_shape
from .functional import labels_to_onehot, resize_segmap

__all__ = ["SemanticMap", "label_conv2d"]


class SemanticMap(NamedTuple):
    """A hard (one-hot) semantic map stored as class ids, optionally followed by dense channels.

    It stands for the ``L``-channel map ``cat([one_hot(ids, L - E), extra], dim=1)`` without
    building it; ``E`` extra channels carry what is not a class (SPADE's instance-boundary
    channel). :class:`condnorm.SPADE` and the SPADE generator take it wherever they take the dense
    map, and compute the same result faster.

    Attributes:
        ids: ``(N, H, W)`` integer class ids in ``[0, L - E)``.
        extra: ``(N, E, H, W)`` floating channels placed after the one-hot ones, or ``None``.

    Example:
        >>> sm = SemanticMap(torch.tensor([[[0, 2], [1, 1]]]))
        >>> sm.to_dense(3)[0, :, 0, 1]
        tensor([0., 0., 1.])
        >>> SemanticMap.from_dense(sm.to_dense(3)).ids.equal(sm.ids)
        True
    """

    ids: Tensor
    extra: Tensor | None = None

    @property
    def num_extra(self) -> int:
        """E, the number of dense channels after the one-hot block."""
        return 0 if self.extra is None else self.extra.shape[1]

    def resize(self, size: tuple[int, int] | torch.Size) -> SemanticMap:
        """Nearest-resize the ids and the extra channels to ``size = (H, W)`` (no-op if they match)."""
        extra = None if self.extra is None else resize_segmap(self.extra, size)
        return SemanticMap(resize_segmap(self.ids, size), extra)

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


def label_conv2d(labels: Tensor | SemanticMap, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Convolve the one-hot map of ``labels`` with ``weight`` ('same' zero padding), without building it.

    .. math::
        \mathrm{out}_{:,p} = b + \sum_{k \in \mathrm{window}} W_{:,\,\mathrm{id}(p+k),\,k}
        \;\big(+\ \mathrm{conv}(\mathrm{extra}, W_{:, L-E:})\big)

    Pixels outside the map contribute nothing (zero padding). The window sums run as one
    ``F.embedding_bag(mode="sum")`` over a ``(L·k², C_out)`` table of weight slices, so the weight's
    gradient is a scatter-add; equal to ``F.conv2d(one_hot, weight, bias, padding=k // 2)`` up to
    float rounding. The result is laid out channels-last in memory.

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
    taps = kh * kw
    # Row id·k² + tap holds W[:, id, tap]; the k² zero rows after the last class stand for padding.
    table = F.pad(weight[:, :num_ids].permute(1, 2, 3, 0).reshape(num_ids * taps, out_c), (0, 0, 0, taps))
    padded = F.pad(ids.long(), (kw // 2, kw // 2, kh // 2, kh // 2), value=num_ids)
    offsets = torch.arange(taps, device=ids.device).view(kh, kw)
    bags = (padded.unfold(1, kh, 1).unfold(2, kw, 1) * taps + offsets).reshape(-1, taps)
    out = F.embedding_bag(bags, table, mode="sum").view(*ids.shape, out_c).permute(0, 3, 1, 2)
    if bias is not None:
        out = out + bias.view(-1, 1, 1)
    if extra is not None:
        out = out + F.conv2d(extra.to(weight.dtype), weight[:, num_ids:], padding=(kh // 2, kw // 2))
    return out
