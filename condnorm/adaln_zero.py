"""Gated adaLN: adaLN-Zero (DiT), adaLN-single (PixArt-α) and per-token TokenAdaLN."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .adaln import ForeignKeys, token_norm
from .film import cond_projection
from .functional import modulate, resize_segmap

__all__ = ["AdaLNSingle", "AdaLNZero", "TokenAdaLN"]


class _GatedAdaLN(ForeignKeys):
    r"""Gated residual branches modulated by the condition: the shared forward of this file's layers.

    For each branch ``f_i`` (registered under its own name, so its keys are e.g. ``attn.*``), in
    order, with ``(shift_i, scale_i, gate_i)`` from :meth:`modulation`:

    .. math::
        x \leftarrow x + g_i \odot f_i\big(\mathrm{norm}(x)\,(1 + s_i) + b_i\big)

    The normalizer has no parameters (LayerNorm, eps 1e-6, as in DiT; or RMSNorm).
    """

    def __init__(self, num_features: int, branches: Mapping[str, nn.Module], *, norm: str, eps: float,
                 shift: bool, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        super().__init__()
        if not branches:
            raise ValueError(f"{type(self).__name__}: give at least one branch, e.g. "
                             "branches={'attn': attention, 'mlp': mlp}")
        self.num_features = num_features
        self.shift = shift
        self.norm = token_norm(norm, num_features, eps=eps, device=device, dtype=dtype)
        self.branch_names = tuple(branches)
        for name, module in branches.items():
            self.add_module(name, module)

    @property
    def num_chunks(self) -> int:
        """Vectors per sample: (shift, scale, gate) — or (scale, gate) — per branch."""
        return (3 if self.shift else 2) * len(self.branch_names)

    def modulation(self, condition: Tensor) -> tuple[Tensor, ...]:
        """The ``num_chunks`` modulation tensors, each broadcastable to ``x`` ``(N, T, C)``."""
        raise NotImplementedError

    def _check(self, x: Tensor, condition: Tensor, dims: tuple[str, ...], sizes: dict[str, int]) -> None:
        name = type(self).__name__
        check_shape(x, ("N", "T", "C"), f"{name} x", {"C": self.num_features})
        check_shape(condition, dims, f"{name} condition", {"N": x.shape[0], **sizes})
        check_finite(condition, f"{name} condition")

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Run every branch on the modulated normalised ``x`` and add it back, gated."""
        self.check_inputs(x, condition)
        params = iter(p.to(x.dtype) for p in self.modulation(condition))
        for name in self.branch_names:
            shift = next(params) if self.shift else None
            scale, gate = next(params), next(params)
            h = self.norm(x)
            h = h * (1.0 + scale) if shift is None else modulate(h, scale, shift)
            x = torch.addcmul(x, gate, getattr(self, name)(h))
        return x

    def check_inputs(self, x: Tensor, condition: Tensor) -> None:
        """Validate shapes (the message names the layer and the expected shape)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.num_features}, branches={self.branch_names}, shift={self.shift}"


class AdaLNZero(_GatedAdaLN):
    r"""adaLN-Zero (DiT): gated residual branches modulated by a condition vector, zero at init.

    .. math::
        x \leftarrow x + g_i(c) \odot f_i\big(\mathrm{LN}(x)\,(1 + s_i(c)) + b_i(c)\big),\quad
        [b_1, s_1, g_1, b_2, s_2, g_2] = W\,\mathrm{SiLU}(c) + w

    ``adaLN_modulation = Sequential(SiLU, Linear(D, 3·B·C))`` is zeroed, so every gate is 0 and
    the block is the identity at init (DiT's ``initialize_weights``). The chunks are ordered per
    branch, shift, scale, gate: DiT's ``shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp,
    gate_mlp``. With ``branches={"attn": ..., "mlp": ...}`` and ``D = C`` this *is* DiT's
    ``DiTBlock`` (keys ``adaLN_modulation.1.*``, ``attn.*``, ``mlp.*``; ``norm1``/``norm2`` have no
    parameters); diffusers' ``AdaLayerNormZero`` ``linear.*`` loads too. With ``norm="rms",
    shift=False`` the chunks are (scale, gate) per branch: Lumina's RMSNorm-Zero modulation
    (``LuminaRMSNormZero``; its tanh gate and post-branch norms are the block's business).
    :meth:`modulation` gives the vectors to use with other block layouts (SD3, Flux).

    Args:
        num_features: C, channels of each token.
        cond_dim: D, size of the condition vector.
        branches: the residual branches, by name, in order (e.g. attention, then the MLP);
            each maps ``(N, T, C)`` to ``(N, T, C)``.
        norm: ``"layer"`` or ``"rms"``.
        eps: the normalizer's epsilon (DiT: 1e-6).
        shift: predict a shift per branch (no shift: Lumina).
        activation: applied to the condition first.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, T, C)``
        - condition: ``(N, D)``
        - output: ``(N, T, C)``

    Example:
        >>> block = AdaLNZero(32, cond_dim=32, branches={"mlp": nn.Linear(32, 32)})
        >>> x = torch.randn(2, 16, 32)
        >>> torch.equal(block(x, torch.randn(2, 32)), x)  # gates start at zero
        True
    """

    FOREIGN_KEYS: Mapping[str, str] = {"linear.": "adaLN_modulation.1."}

    def __init__(
        self,
        num_features: int,
        cond_dim: int,
        *,
        branches: Mapping[str, nn.Module],
        norm: str = "layer",
        eps: float = 1e-6,
        shift: bool = True,
        activation: str | None = "silu",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, branches, norm=norm, eps=eps, shift=shift, device=device, dtype=dtype)
        self.cond_dim = cond_dim
        self.adaLN_modulation = cond_projection(cond_dim, self.num_chunks * num_features, activation,
                                                device=device, dtype=dtype)

    def modulation(self, condition: Tensor) -> tuple[Tensor, ...]:
        """The per-branch vectors, each ``(N, 1, C)``, in DiT's order."""
        return self.adaLN_modulation(condition).unsqueeze(1).chunk(self.num_chunks, dim=-1)

    def check_inputs(self, x: Tensor, condition: Tensor) -> None:
        """``x`` ``(N, T, C)`` and ``condition`` ``(N, D)``."""
        self._check(x, condition, ("N", "D"), {"D": self.cond_dim})


class AdaLNSingle(_GatedAdaLN):
    r"""adaLN-single (PixArt-α): one timestep MLP per network, a learned per-block table added to it.

    .. math::
        [b_1, s_1, g_1, \dots] = E + t, \qquad t = W\,\mathrm{SiLU}(e) + w \;\text{(shared)}

    The network computes ``t`` once with :meth:`shared_mlp` (PixArt's ``t_block``,
    ``Sequential(SiLU, Linear(C, 6C))``) and passes it, ``(N, 3·B·C)``, to every block; each block
    owns only ``scale_shift_table`` ``(3·B, C)``, initialised ``randn / √C`` (PixArt's key, shape
    and init). The chunks are ordered like DiT's (:class:`AdaLNZero`); ``t2i_modulate`` is
    ``x (1 + scale) + shift``. Not the identity at init (PixArt zeroes the branches' output
    projections instead). PixArt's cross-attention sits between its two gated branches without a
    gate; use :meth:`modulation` for that layout, or fold it into a branch.

    Args:
        num_features: C, channels of each token.
        branches: the gated residual branches, by name, in order.
        norm: ``"layer"`` or ``"rms"``.
        eps: the normalizer's epsilon (PixArt: 1e-6).
        shift: predict a shift per branch.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, T, C)``
        - condition: ``(N, 3·B·C)``, the shared MLP's output
        - output: ``(N, T, C)``

    Example:
        >>> t_block = AdaLNSingle.shared_mlp(32, num_chunks=6)
        >>> block = AdaLNSingle(32, branches={"attn": nn.Identity(), "mlp": nn.Linear(32, 32)})
        >>> block(torch.randn(2, 16, 32), t_block(torch.randn(2, 32))).shape
        torch.Size([2, 16, 32])
    """

    def __init__(
        self,
        num_features: int,
        *,
        branches: Mapping[str, nn.Module],
        norm: str = "layer",
        eps: float = 1e-6,
        shift: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, branches, norm=norm, eps=eps, shift=shift, device=device, dtype=dtype)
        self.scale_shift_table = nn.Parameter(
            torch.randn(self.num_chunks, num_features, device=device, dtype=dtype) / math.sqrt(num_features))

    @staticmethod
    def shared_mlp(num_features: int, num_chunks: int = 6, *, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> nn.Sequential:
        """PixArt's ``t_block``: ``Sequential(SiLU, Linear(C, num_chunks·C))``, weight ``N(0, 0.02²)``."""
        mlp = nn.Sequential(nn.SiLU(), nn.Linear(num_features, num_chunks * num_features, device=device,
                                                 dtype=dtype))
        nn.init.normal_(mlp[1].weight, std=0.02)
        return mlp

    def modulation(self, condition: Tensor) -> tuple[Tensor, ...]:
        """``scale_shift_table + t``, split into ``num_chunks`` tensors of ``(N, 1, C)``."""
        params = self.scale_shift_table + condition.unflatten(1, (self.num_chunks, self.num_features))
        return params.unsqueeze(2).unbind(1)

    def check_inputs(self, x: Tensor, condition: Tensor) -> None:
        """``x`` ``(N, T, C)`` and the shared ``condition`` ``(N, num_chunks·C)``."""
        self._check(x, condition, ("N", "K·C"), {"K·C": self.num_chunks * self.num_features})


class TokenAdaLN(_GatedAdaLN):
    r"""Per-token adaLN-Zero: shift, scale and gate vary across the token grid, read from a spatial map.

    .. math::
        x_t \leftarrow x_t + g_{i,t}(m) \odot f_i\big(\mathrm{LN}(x)_t\,(1 + s_{i,t}(m)) + b_{i,t}(m)\big)

    "SPADE for transformers": the condition ``m`` ``(N, L, H, W)`` (a semantic map, depth, a
    layout) is resized (nearest) to the token grid ``grid_size = (h, w)``, ``T = h·w`` in
    row-major order (DiT's patch order), and a convolution head predicts the ``3·B·C`` vectors per
    token: ``head`` is one ``k×k`` conv, or with ``hidden`` a conv–SiLU–conv. The last conv is
    zeroed: every gate is 0 and the block is the identity at init, as adaLN-Zero. New in
    condnorm; no canonical checkpoint.

    Args:
        num_features: C, channels of each token.
        label_nc: L, channels of the map.
        grid_size: ``(h, w)``, the token grid (fixed, like a DiT's positional embedding).
        branches: the gated residual branches, by name, in order.
        kernel_size: of the head's convs (1 or 3; odd).
        hidden: width of a hidden conv layer in the head (None: a single conv).
        norm: ``"layer"`` or ``"rms"``.
        eps: the normalizer's epsilon.
        shift: predict a shift per branch.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, T, C)`` with ``T = h·w``
        - condition: ``(N, L, H, W)``, any size
        - output: ``(N, T, C)``

    Example:
        >>> layer = TokenAdaLN(32, label_nc=5, grid_size=(4, 4), branches={"mlp": nn.Linear(32, 32)})
        >>> layer(torch.randn(2, 16, 32), torch.rand(2, 5, 64, 64)).shape
        torch.Size([2, 16, 32])
    """

    def __init__(
        self,
        num_features: int,
        label_nc: int,
        *,
        grid_size: tuple[int, int],
        branches: Mapping[str, nn.Module],
        kernel_size: int = 1,
        hidden: int | None = None,
        norm: str = "layer",
        eps: float = 1e-6,
        shift: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, branches, norm=norm, eps=eps, shift=shift, device=device, dtype=dtype)
        if kernel_size % 2 != 1:
            raise ValueError(f"TokenAdaLN: kernel_size must be odd, got {kernel_size}")
        dd = {"device": device, "dtype": dtype}
        self.label_nc = label_nc
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        out, pad = self.num_chunks * num_features, kernel_size // 2
        layers: list[nn.Module] = []
        if hidden is not None:
            layers += [nn.Conv2d(label_nc, hidden, kernel_size, padding=pad, **dd), nn.SiLU()]
        layers.append(nn.Conv2d(hidden or label_nc, out, kernel_size, padding=pad, **dd))
        self.head = nn.Sequential(*layers)
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def modulation(self, condition: Tensor) -> tuple[Tensor, ...]:
        """The per-token vectors, each ``(N, T, C)``, from the map resized to the grid."""
        params = self.head(resize_segmap(condition, self.grid_size))  # (N, K·C, h, w)
        return params.flatten(2).transpose(1, 2).chunk(self.num_chunks, dim=-1)

    def check_inputs(self, x: Tensor, condition: Tensor) -> None:
        """``x`` ``(N, h·w, C)`` and ``condition`` ``(N, L, H, W)``."""
        self._check(x, condition, ("N", "L", "H", "W"), {"L": self.label_nc})
        h, w = self.grid_size
        if x.shape[1] != h * w:
            raise ValueError(f"TokenAdaLN x: expected T = {h}·{w} = {h * w} tokens "
                             f"(grid_size={self.grid_size}), got shape {tuple(x.shape)}")
