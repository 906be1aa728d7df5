"""DiT: patchify, a stack of adaLN-Zero blocks (attention + MLP), the final adaLN layer, unpatchify.

Parameter names and shapes are those of facebookresearch/DiT ``models.py`` (``x_embedder.proj``,
``t_embedder.mlp.0/2``, ``y_embedder.embedding_table``, ``pos_embed``, ``blocks.i.attn.qkv/proj``,
``blocks.i.mlp.fc1/fc2``, ``blocks.i.adaLN_modulation.1``, ``final_layer.linear``,
``final_layer.adaLN_modulation.1``), so a DiT checkpoint of the same size loads with
``strict=True``. Each block is :class:`condnorm.AdaLNZero` with ``attn`` and ``mlp`` branches;
the final layer is :class:`condnorm.AdaptiveLayerNorm` (shift first) plus ``linear``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import condnorm

__all__ = ["DiT", "FinalLayer", "dit_block", "timestep_embedding"]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding ``[cos(t ω_k), sin(t ω_k)]``, ``ω_k = max_period^(-k / (dim/2))`` (DiT's)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def _sincos_2d(dim: int, grid: int) -> Tensor:
    """MAE/DiT's fixed 2-D positional table ``(grid², dim)``: half the channels per axis, sin then cos."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")

    def axis(pos: Tensor) -> Tensor:
        out = pos.reshape(-1, 1) * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    return torch.cat([axis(xs), axis(ys)], dim=1).float()


class _PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, hidden: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden, patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _TimestepEmbedder(nn.Module):
    def __init__(self, hidden: int, frequency_dim: int = 256) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_dim))


class _LabelEmbedder(nn.Module):
    """Class embeddings; the extra last row is the "no class" token used for classifier-free guidance."""

    def __init__(self, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden)

    def forward(self, y: Tensor) -> Tensor:
        return self.embedding_table(y)


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def dit_block(hidden: int, num_heads: int, mlp_ratio: float = 4.0) -> condnorm.AdaLNZero:
    """DiT's ``DiTBlock``: adaLN-Zero around self-attention and a GELU(tanh) MLP (``attn.*``, ``mlp.*``)."""
    return condnorm.AdaLNZero(hidden, cond_dim=hidden, branches={
        "attn": _Attention(hidden, num_heads), "mlp": _Mlp(hidden, int(hidden * mlp_ratio))})


class FinalLayer(condnorm.AdaptiveLayerNorm):
    """DiT's final layer: ``linear(LN(x)(1 + scale) + shift)``, shift first in ``adaLN_modulation``."""

    FOREIGN_KEYS: Mapping[str, str] = {}  # ``linear`` is this layer's own output projection here

    def __init__(self, hidden: int, patch: int, out_channels: int) -> None:
        super().__init__(hidden, hidden, order="shift_scale", eps=1e-6)
        self.linear = nn.Linear(hidden, patch * patch * out_channels)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return self.linear(super().forward(x, c))


class DiT(nn.Module):
    """Class-conditional DiT on latents ``(N, in_channels, S, S)``; predicts ``(N, out, S, S)``.

    ``out = 2·in_channels`` with ``learn_sigma`` (noise and variance, as DiT). Weights start as DiT's
    ``initialize_weights`` leaves the parts that matter for the identity: every block's and the final
    layer's modulation and the final linear are zero, so the network outputs 0 at init.

    Example:
        >>> net = DiT(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=2,
        ...           num_classes=10)
        >>> net(torch.randn(2, 4, 8, 8), torch.tensor([3.0, 500.0]), torch.tensor([1, 2])).shape
        torch.Size([2, 8, 8, 8])
    """

    def __init__(self, *, input_size: int = 32, patch_size: int = 2, in_channels: int = 4,
                 hidden_size: int = 384, depth: int = 12, num_heads: int = 6, mlp_ratio: float = 4.0,
                 num_classes: int = 1000, learn_sigma: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        grid = input_size // patch_size
        self.x_embedder = _PatchEmbed(in_channels, hidden_size, patch_size)
        self.t_embedder = _TimestepEmbedder(hidden_size)
        self.y_embedder = _LabelEmbedder(num_classes, hidden_size)
        self.pos_embed = nn.Parameter(_sincos_2d(hidden_size, grid)[None], requires_grad=False)
        self.blocks = nn.ModuleList([dit_block(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def unpatchify(self, x: Tensor) -> Tensor:
        """``(N, T, p²·C)`` tokens back to ``(N, C, h·p, w·p)`` images (square grid)."""
        p, c = self.patch_size, self.out_channels
        h = w = math.isqrt(x.shape[1])
        x = x.reshape(x.shape[0], h, w, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(x.shape[0], c, h * p, w * p)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """Latents ``x`` at diffusion times ``t`` ``(N,)`` with class ids ``y`` ``(N,)``."""
        tokens = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            tokens = block(tokens, c)
        return self.unpatchify(self.final_layer(tokens, c))
