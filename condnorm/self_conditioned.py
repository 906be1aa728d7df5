"""Self-conditioned normalization: the affine transform is predicted from the input itself.

Instance-Enhancement BN (Liang et al., 2019) and Attentive Normalization (Li et al., 2019)
pool the input over space and turn the pooled vector into a per-sample scale (and shift),
the way SE blocks gate channels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_shape
from .functional import mix_table, modulate
from .norm import NormSpec, apply_norm, make_norm

__all__ = ["AttentiveNorm2d", "InstanceEnhancementBatchNorm2d"]

_GATE_BIAS = -1.0  # the paper's initial gate bias: σ(-1) ≈ 0.27


class InstanceEnhancementBatchNorm2d(nn.Module):
    r"""Batch normalization whose scale each instance recalibrates with a sigmoid gate (IEBN).

    .. math::
        \mathrm{out} = \mathrm{BN}(x)\,\gamma\,\sigma\big(w \odot \mathrm{GAP}(x) + b\big) + \beta

    ``γ, β`` are BN's usual per-channel affine; ``w, b`` (``weight_readjust``,
    ``bias_readjust``, as in the paper's code) are the gate's per-channel weight and bias.

    Init: the gate starts as the paper's, ``w = 0`` and ``b = -1``, so it is the constant
    ``σ(-1)``; ``γ`` starts at ``1 / σ(-1) = 1 + e`` instead of the paper's 1 and ``β`` at 0,
    so the layer is exactly a freshly initialised ``BatchNorm2d(affine=True)`` at init (the
    paper's init shrinks every output by ``σ(-1) ≈ 0.27``). To start from a trained BN, copy
    its weight multiplied by ``1 + e``.

    Args:
        num_features: C, channels of ``x``.
        eps: BN's epsilon.
        momentum: BN's running-statistics momentum (None: cumulative average).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, H, W)``
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = InstanceEnhancementBatchNorm2d(16)
        >>> layer(torch.randn(4, 16, 8, 8)).shape
        torch.Size([4, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.param_free_norm = make_norm("batch", num_features, eps=eps, momentum=momentum, **dd)
        self.weight = nn.Parameter(torch.empty(num_features, **dd))
        self.bias = nn.Parameter(torch.empty(num_features, **dd))
        self.weight_readjust = nn.Parameter(torch.empty(num_features, **dd))
        self.bias_readjust = nn.Parameter(torch.empty(num_features, **dd))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gate ``w = 0, b = -1``; ``γ = 1 + e``, ``β = 0``: plain BN at init (see the class doc)."""
        nn.init.zeros_(self.weight_readjust)
        nn.init.constant_(self.bias_readjust, _GATE_BIAS)
        nn.init.constant_(self.weight, 1.0 + math.exp(-_GATE_BIAS))  # 1 / σ(b)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Batch-normalise ``x``; scale each sample's channels by ``γ`` times its gate."""
        check_shape(x, ("N", "C", "H", "W"), "InstanceEnhancementBatchNorm2d x", {"C": self.num_features})
        gate = torch.sigmoid(torch.addcmul(self.bias_readjust, x.mean((2, 3)), self.weight_readjust))
        scale = (self.weight * gate)[:, :, None, None]
        return modulate(self.param_free_norm(x), scale, self.bias[:, None, None], plain_gamma=True)

    def extra_repr(self) -> str:
        return f"{self.num_features}"


class AttentiveNorm2d(nn.Module):
    r"""Normalization with an input-dependent mixture of affine transforms (Attentive Normalization).

    .. math::
        \lambda = \mathrm{act}\big(W\,\mathrm{GAP}(x) + a\big) \in \mathbb{R}^K,\quad
        \mathrm{out} = \mathrm{norm}(x)\Big(1 + \sum_k \lambda_k \gamma_k\Big) + \sum_k \lambda_k \beta_k

    with ``act`` a sigmoid (independent weights) or a softmax over the ``K`` mixture components.

    Init: the components ``γ_k, β_k`` (``weight``, ``bias``, ``[K, C]``) start at zero, so the
    layer is ``norm(x)`` at init; the attention map keeps ``nn.Linear``'s random init, so the
    components receive different gradients and do not stay identical. The authors' code
    (``AttnBatchNorm2d``) adds options this layer leaves out: a BN and a hard sigmoid in the
    attention branch and standardised pooling (mean / std instead of GAP).

    Args:
        num_features: C, channels of ``x``.
        num_mixtures: K, the number of affine components (10 in the authors' code).
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        attention: ``"sigmoid"`` or ``"softmax"``.
        eps: the normalizer's epsilon.
        momentum: the normalizer's running-statistics momentum (kinds that keep them).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, H, W)``
        - output: ``(N, C, H, W)``

    Raises:
        ValueError: for an unknown ``attention``.

    Example:
        >>> layer = AttentiveNorm2d(16, num_mixtures=5)
        >>> layer(torch.randn(4, 16, 8, 8)).shape
        torch.Size([4, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        *,
        num_mixtures: int = 10,
        norm: NormSpec = "batch",
        attention: str = "sigmoid",
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if attention not in ("sigmoid", "softmax"):
            raise ValueError(f"AttentiveNorm2d: attention must be 'sigmoid' or 'softmax', got {attention!r}")
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.num_mixtures = num_mixtures
        self.attention_kind = attention
        self.param_free_norm = make_norm(norm, num_features, eps=eps, **dd)
        if hasattr(self.param_free_norm, "momentum"):
            self.param_free_norm.momentum = momentum
        self.attention = nn.Linear(num_features, num_mixtures, **dd)
        self.weight = nn.Parameter(torch.zeros(num_mixtures, num_features, **dd))
        self.bias = nn.Parameter(torch.zeros(num_mixtures, num_features, **dd))

    def mixture_weights(self, x: Tensor) -> Tensor:
        """Return λ ``(N, K)``, the attention over the components for input ``x``."""
        logits = self.attention(x.mean((2, 3)))
        return logits.softmax(dim=1) if self.attention_kind == "softmax" else logits.sigmoid()

    def forward(self, x: Tensor, **norm_kwargs: Any) -> Tensor:
        """Normalise ``x`` and modulate it with the λ-weighted mixture of components.

        ``norm_kwargs`` go to the normalizer unchanged (:func:`condnorm.norm.apply_norm`).
        """
        check_shape(x, ("N", "C", "H", "W"), "AttentiveNorm2d x", {"C": self.num_features})
        table = torch.cat([self.weight, self.bias], dim=1)
        gamma, beta = mix_table(table, self.mixture_weights(x), name="AttentiveNorm2d λ").chunk(2, dim=1)
        return modulate(apply_norm(self.param_free_norm, x, norm_kwargs), gamma[:, :, None, None],
                        beta[:, :, None, None])

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_mixtures={self.num_mixtures}, attention={self.attention_kind!r}"
