"""ADM's residual block with the scale-shift norm: ``ResBlock(use_scale_shift_norm=True)``."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

import condnorm
from condnorm.adaln import ForeignKeys

__all__ = ["ResBlock"]


class ResBlock(ForeignKeys):
    r"""``skip(x) + conv(drop(SiLU(AdaGN(conv(SiLU(GN(x))), emb))))``: ADM's block, same state-dict keys.

    guided-diffusion's keys load with ``strict=True``: ``in_layers.0`` (``GroupNorm(32, C)``),
    ``in_layers.2`` (3×3 conv), ``emb_layers.1`` (``Linear(E, 2·O)``), ``out_layers.0``
    (``GroupNorm(32, O)``), ``out_layers.3`` (3×3 conv, zero at init) and ``skip_connection``
    (1×1 conv, or 3×3 with ``use_conv``, when ``O ≠ C``). Here ``out_layers.0`` and ``emb_layers``
    are one :class:`condnorm.AdaGN` (``out_norm``), so those names are read as ``out_norm.*``
    and ``out_layers.3`` as ``out_layers.2`` (this block's own ``state_dict`` uses its names).
    ``num_groups`` (ADM: 32) lets narrow blocks (a CPU demo's 16 channels) use fewer groups.

    Example:
        >>> import torch
        >>> block = ResBlock(64, emb_channels=128, out_channels=32)
        >>> block(torch.randn(2, 64, 8, 8), torch.randn(2, 128)).shape
        torch.Size([2, 32, 8, 8])
    """

    FOREIGN_KEYS: Mapping[str, str] = {"out_layers.0.": "out_norm.", "emb_layers.": "out_norm.emb_layers.",
                                       "out_layers.3.": "out_layers.2."}

    def __init__(self, channels: int, emb_channels: int, *, out_channels: int | None = None,
                 dropout: float = 0.0, use_conv: bool = False, num_groups: int = 32) -> None:
        super().__init__()
        out = out_channels or channels
        self.in_layers = nn.Sequential(nn.GroupNorm(num_groups, channels), nn.SiLU(),
                                       nn.Conv2d(channels, out, 3, padding=1))
        self.out_norm = condnorm.AdaGN(out, emb_dim=emb_channels, num_groups=num_groups)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out, out, 3, padding=1))
        nn.init.zeros_(self.out_layers[2].weight)
        nn.init.zeros_(self.out_layers[2].bias)
        if out == channels:
            self.skip_connection: nn.Module = nn.Identity()
        else:
            kernel = 3 if use_conv else 1
            self.skip_connection = nn.Conv2d(channels, out, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """``x`` ``(N, C, H, W)`` conditioned on ``emb`` ``(N, E)``."""
        h = self.out_norm(self.in_layers(x), emb)
        return self.skip_connection(x) + self.out_layers(h)
