"""SDM's decoder residual block: both norms are ``SPADEGroupNorm`` (mask in, timestep on the second)."""

from __future__ import annotations

from torch import Tensor, nn

import condnorm

__all__ = ["SDMResBlock"]


class SDMResBlock(nn.Module):
    r"""``skip(x) + conv(drop(SiLU(SPADEGN(conv(SiLU(SPADEGN(x, m))), m, e))))``: SDM's ``SDMResBlock``.

    The first norm is :class:`condnorm.SPADEGroupNorm` on the mask alone (SDM's ``in_norm``); the
    second also takes the timestep embedding's scale and shift (SDM's ``out_norm`` with the
    block's ``emb_layers``). The last conv starts at zero, so the block is ``skip(x)`` at init.

    Args:
        channels: C, input channels.
        emb_dim: E, size of the timestep embedding.
        label_nc: L, channels of the dense mask.
        out_channels: O (default C); a 1×1 conv skip when it differs.
        dropout: before the last conv.
        num_groups: groups of both group norms (SDM: 32).
        spade_hidden: width of SPADE's shared embedding (SDM: 128).

    Shape:
        - x: ``(N, C, H, W)``
        - mask: ``(N, L, H', W')`` (resized to ``H, W`` by nearest neighbour inside SPADE)
        - emb: ``(N, E)``
        - output: ``(N, O, H, W)``

    Example:
        >>> import torch
        >>> block = SDMResBlock(16, emb_dim=32, label_nc=4, out_channels=8, num_groups=4, spade_hidden=16)
        >>> block(torch.randn(2, 16, 8, 8), torch.rand(2, 4, 32, 32), torch.randn(2, 32)).shape
        torch.Size([2, 8, 8, 8])
    """

    def __init__(self, channels: int, emb_dim: int, label_nc: int, *, out_channels: int | None = None,
                 dropout: float = 0.0, num_groups: int = 32, spade_hidden: int = 128) -> None:
        super().__init__()
        out = out_channels or channels
        self.in_norm = condnorm.SPADEGroupNorm(channels, label_nc, num_groups=num_groups, hidden=spade_hidden)
        self.in_conv = nn.Conv2d(channels, out, 3, padding=1)
        self.out_norm = condnorm.SPADEGroupNorm(out, label_nc, emb_dim=emb_dim, num_groups=num_groups,
                                                hidden=spade_hidden)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out, out, 3, padding=1))
        nn.init.zeros_(self.out_layers[2].weight)
        nn.init.zeros_(self.out_layers[2].bias)
        self.skip = nn.Identity() if out == channels else nn.Conv2d(channels, out, 1)

    def forward(self, x: Tensor, mask: Tensor, emb: Tensor) -> Tensor:
        """``x`` ``(N, C, H, W)`` modulated by ``mask`` ``(N, L, H', W')`` and ``emb`` ``(N, E)``."""
        h = self.in_conv(nn.functional.silu(self.in_norm(x, mask)))
        return self.skip(x) + self.out_layers(self.out_norm(h, mask, emb))
