"""SDM's denoising UNet: AdaGN ResBlocks on the noisy image down, SPADEGroupNorm ResBlocks up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from models.adm import ResBlock

from .attention import AttentionBlock
from .blocks import SDMResBlock
from .embedding import timestep_embedding
from .resample import Downsample, Upsample

__all__ = ["SIZES", "SDMUNet"]

SIZES: Mapping[str, Mapping[str, Any]] = {
    # CPU demo: three levels, one block each, attention at 1/4 resolution (8×8 of a 32×32 crop).
    "tiny": {"model_channels": 32, "channel_mult": (1, 2, 2), "num_res_blocks": 1, "attention_ds": (4,),
             "head_channels": 32, "num_groups": 8, "spade_hidden": 32},
    # The paper's ADE20K / COCO-Stuff 256×256 model (scripts/ade20k.sh: --num_channels 256
    # --num_res_blocks 2 --attention_resolutions 32,16,8 --num_head_channels 64; guided-diffusion's
    # channel_mult for 256 px is 1,1,2,2,4,4). Attention at 32, 16, 8 px = downsample factors 8, 16, 32.
    "paper_256": {"model_channels": 256, "channel_mult": (1, 1, 2, 2, 4, 4), "num_res_blocks": 2,
                  "attention_ds": (8, 16, 32), "head_channels": 64, "num_groups": 32, "spade_hidden": 128},
}
"""Named sizes for :meth:`SDMUNet.from_size`."""


class SDMUNet(nn.Module):
    r"""``(x_t, t, mask) → ε`` (or v): SDM's semantic diffusion UNet.

    - **Timestep**: sinusoidal embedding of ``t`` (``model_channels``), then
      ``Linear → SiLU → Linear`` to ``E = 4·model_channels``.
    - **Encoder** (the noisy image only): per level ``num_res_blocks`` ADM ResBlocks
      (:class:`models.adm.ResBlock`: GroupNorm, then :class:`condnorm.AdaGN` scale-shift by the
      timestep), :class:`AttentionBlock` where the downsample factor is in ``attention_ds``, and a
      strided conv between levels.
    - **Middle and decoder** (the mask enters here): :class:`SDMResBlock` (both norms
      :class:`condnorm.SPADEGroupNorm`, the second also timestep-modulated) on the concatenation
      with the encoder's skip features, ``num_res_blocks + 1`` per level, attention as above,
      nearest ×2 + conv between levels.
    - **Output**: GroupNorm, SiLU, a zero-initialised 3×3 conv to ``out_channels``.

    SDM learns the variance too (``learn_sigma``, 6 output channels); this model predicts ε or v
    only (3 channels) and samples with DDIM, which does not use the variance.

    Args:
        label_nc: L, channels of the dense mask (one-hot ids + instance edges).
        model_channels: base width (paper: 256).
        channel_mult: width multiplier per level (paper at 256 px: 1, 1, 2, 2, 4, 4).
        num_res_blocks: encoder blocks per level (paper: 2).
        attention_ds: downsample factors with attention (paper: 8, 16, 32, i.e. 32, 16, 8 px at 256 px).
        head_channels: channels per attention head (paper: 64).
        num_groups: group-norm groups (paper: 32).
        spade_hidden: SPADE's shared-embedding width (paper: 128).
        dropout: in every ResBlock (paper: 0).
        in_channels: image channels.
        out_channels: output channels.

    Shape:
        - x: ``(N, in_channels, H, W)``, ``H`` and ``W`` multiples of ``2 ** (len(channel_mult) - 1)``
        - t: ``(N,)`` timesteps (float or int)
        - mask: ``(N, L, H', W')``; all zeros is the unconditional input of classifier-free guidance
        - output: ``(N, out_channels, H, W)``

    Example:
        >>> import torch
        >>> net = SDMUNet.from_size("tiny", label_nc=5)
        >>> net(torch.randn(2, 3, 32, 32), torch.tensor([3.0, 700.0]), torch.rand(2, 5, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, label_nc: int, *, model_channels: int = 256, channel_mult: Sequence[int] = (1, 1, 2, 2, 4, 4),
                 num_res_blocks: int = 2, attention_ds: Sequence[int] = (8, 16, 32), head_channels: int = 64,
                 num_groups: int = 32, spade_hidden: int = 128, dropout: float = 0.0, in_channels: int = 3,
                 out_channels: int = 3) -> None:
        super().__init__()
        self.label_nc, self.model_channels = label_nc, model_channels
        self.divisor = 2 ** (len(channel_mult) - 1)
        emb = 4 * model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.input_conv = nn.Conv2d(in_channels, model_channels, 3, padding=1)

        def attention(ch: int, ds: int) -> list[nn.Module]:
            return [AttentionBlock(ch, head_channels=head_channels, num_groups=num_groups)] if ds in attention_ds \
                else []

        def decoder_block(ch: int, out: int) -> SDMResBlock:
            return SDMResBlock(ch, emb, label_nc, out_channels=out, dropout=dropout, num_groups=num_groups,
                               spade_hidden=spade_hidden)

        ch, ds, skips = model_channels, 1, [model_channels]
        self.encoder = nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                out = mult * model_channels
                self.encoder.append(nn.ModuleList([ResBlock(ch, emb, out_channels=out, dropout=dropout,
                                                            num_groups=num_groups), *attention(out, ds)]))
                ch = out
                skips.append(ch)
            if level < len(channel_mult) - 1:
                self.encoder.append(nn.ModuleList([Downsample(ch)]))
                ds *= 2
                skips.append(ch)
        self.middle = nn.ModuleList([decoder_block(ch, ch),
                                     AttentionBlock(ch, head_channels=head_channels, num_groups=num_groups),
                                     decoder_block(ch, ch)])
        self.decoder = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                out = mult * model_channels
                layers: list[nn.Module] = [decoder_block(ch + skips.pop(), out), *attention(out, ds)]
                ch = out
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.decoder.append(nn.ModuleList(layers))
        self.out = nn.Sequential(nn.GroupNorm(num_groups, ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    @classmethod
    def from_size(cls, size: str, label_nc: int, **overrides: Any) -> SDMUNet:
        """The UNet of a named size in :data:`SIZES` (``tiny``, ``paper_256``), with ``overrides``.

        Example:
            >>> SDMUNet.from_size("tiny", label_nc=3, model_channels=16).model_channels
            16
        """
        if size not in SIZES:
            raise ValueError(f"SDMUNet: size must be one of {sorted(SIZES)}, got {size!r}")
        return cls(label_nc, **{**SIZES[size], **overrides})

    @staticmethod
    def _run(layers: nn.ModuleList, h: Tensor, emb: Tensor, mask: Tensor) -> Tensor:
        for layer in layers:
            if isinstance(layer, ResBlock):
                h = layer(h, emb)
            elif isinstance(layer, SDMResBlock):
                h = layer(h, mask, emb)
            else:
                h = layer(h)
        return h

    def forward(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        """Predict the noise (or v) of ``x`` ``(N, 3, H, W)`` at timesteps ``t`` ``(N,)`` for ``mask``."""
        if x.shape[-2] % self.divisor or x.shape[-1] % self.divisor:
            raise ValueError(f"SDMUNet: image sides must be multiples of {self.divisor}, got {tuple(x.shape[-2:])}")
        emb = self.time_embed(timestep_embedding(t.float(), self.model_channels).to(x.dtype))
        mask = mask.to(x.dtype)
        h = self.input_conv(x)
        skips = [h]
        for layers in self.encoder:
            h = self._run(layers, h, emb, mask)
            skips.append(h)
        h = self._run(self.middle, h, emb, mask)
        for layers in self.decoder:
            h = self._run(layers, torch.cat([h, skips.pop()], 1), emb, mask)
        return self.out(h)
