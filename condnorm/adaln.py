"""Adaptive layer and RMS normalization of token sequences (DiT's adaLN, diffusers, speech CLN)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .film import cond_projection
from .functional import film

__all__ = ["AdaLN", "AdaRMSNorm", "AdaptiveLayerNorm", "ConditionalLayerNorm", "ForeignKeys", "RMSNorm",
           "token_norm"]

_ORDERS = ("scale_shift", "shift_scale")


class RMSNorm(nn.Module):
    r"""RMS normalization over the last dimension, :math:`x / \sqrt{\overline{x^2} + \epsilon}\,[\cdot w]`.

    ``nn.RMSNorm``'s keys and arguments, written with plain operators so that both ONNX
    exporters take it (the TorchScript-based one has no ``aten::rms_norm``).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-6, elementwise_affine: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features, device=device, dtype=dtype)) \
            if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        """Divide each token by its root mean square (then scale by ``weight``)."""
        out = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + self.eps)
        return out if self.weight is None else out * self.weight.to(out.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, elementwise_affine={self.weight is not None}"


def token_norm(kind: str, num_features: int, *, eps: float, elementwise_affine: bool = False,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> nn.Module:
    """The normalizer over the last (channel) dimension of ``(N, *, C)`` tokens: ``"layer"`` or ``"rms"``.

    :func:`condnorm.make_norm` builds normalizers of ``(N, C, H, W)`` maps; token layers normalise
    each token over its channels instead (``nn.LayerNorm`` / :class:`RMSNorm`, no affine by default).

    Raises:
        ValueError: for another kind.

    Example:
        >>> token_norm("rms", 8, eps=1e-6)
        RMSNorm(8, eps=1e-06, elementwise_affine=False)
    """
    dd = {"device": device, "dtype": dtype}
    if kind == "layer":
        return nn.LayerNorm(num_features, eps=eps, elementwise_affine=elementwise_affine, **dd)
    if kind == "rms":
        return RMSNorm(num_features, eps=eps, elementwise_affine=elementwise_affine, **dd)
    raise ValueError(f"token_norm: kind must be 'layer' or 'rms', got {kind!r}")


class ForeignKeys(nn.Module):
    """Accept other codebases' names for this module's parameters in ``load_state_dict``.

    ``FOREIGN_KEYS`` maps a key prefix used elsewhere (diffusers' ``linear.``) to ours
    (``adaLN_modulation.1.``); keys are renamed before loading, so those checkpoints load with
    ``strict=True``. The module's own ``state_dict`` keeps its own names.
    """

    FOREIGN_KEYS: Mapping[str, str] = {}

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            for theirs, ours in self.FOREIGN_KEYS.items():
                if key.startswith(prefix + theirs):
                    state_dict[prefix + ours + key[len(prefix + theirs):]] = state_dict.pop(key)
                    break
        super()._load_from_state_dict(state_dict, prefix, *args)


class AdaptiveLayerNorm(ForeignKeys):
    r"""Layer normalization of tokens modulated by a condition vector (adaLN).

    .. math::
        y = \mathrm{LN}(x)\,(1 + \gamma(c)) + \beta(c), \qquad
        [\gamma, \beta] = W\,\mathrm{SiLU}(c) + b

    One scale and shift per sample, shared by all its tokens. The projection
    ``adaLN_modulation = Sequential(SiLU, Linear(D, 2C))`` starts at zero (identity after
    normalisation, as DiT initialises it). Its outputs are split ``order="scale_shift"``
    (diffusers' ``AdaLayerNormContinuous``, the default) or ``"shift_scale"`` (DiT's final
    layer, diffusers' ``AdaLayerNorm(chunk_dim=1)``). State dicts with diffusers' names load with
    ``strict=True`` (``linear.*`` is read as ``adaLN_modulation.1.*``; ``norm.weight/bias`` are
    there with ``elementwise_affine=True``, diffusers' default for the continuous variant).

    Args:
        num_features: C, channels of each token.
        cond_dim: D, size of the condition vector.
        norm: ``"layer"`` or ``"rms"`` (:func:`token_norm`).
        eps: the normalizer's epsilon (DiT: 1e-6).
        elementwise_affine: the normalizer's own weight (and bias).
        shift: predict β (without it, ``y = norm(x)(1 + γ)``).
        order: how the projection's output splits, ``"scale_shift"`` or ``"shift_scale"``.
        activation: applied to the condition first (``"silu"``; None for a plain projection).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, *, C)``, e.g. tokens ``(N, T, C)``
        - condition: ``(N, D)``
        - output: as ``x``

    Example:
        >>> layer = AdaptiveLayerNorm(32, cond_dim=16)
        >>> layer(torch.randn(2, 10, 32), torch.randn(2, 16)).shape
        torch.Size([2, 10, 32])
    """

    FOREIGN_KEYS: Mapping[str, str] = {"linear.": "adaLN_modulation.1."}
    NORM = "layer"

    def __init__(
        self,
        num_features: int,
        cond_dim: int,
        *,
        norm: str | None = None,
        eps: float = 1e-6,
        elementwise_affine: bool = False,
        shift: bool = True,
        order: str = "scale_shift",
        activation: str | None = "silu",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if order not in _ORDERS:
            raise ValueError(f"{type(self).__name__}: order must be one of {_ORDERS}, got {order!r}")
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.cond_dim = cond_dim
        self.shift = shift
        self.order = order
        self.norm = token_norm(norm or self.NORM, num_features, eps=eps,
                               elementwise_affine=elementwise_affine, **dd)
        out = (2 if shift else 1) * num_features
        self.adaLN_modulation = cond_projection(cond_dim, out, activation, **dd)

    def scale_shift(self, condition: Tensor) -> tuple[Tensor, Tensor]:
        """``(γ, β)``, each ``(N, C)``, projected from the condition (β zero when ``shift=False``)."""
        params = self.adaLN_modulation(condition)
        if not self.shift:
            return params, torch.zeros_like(params)
        first, second = params.chunk(2, dim=1)
        return (first, second) if self.order == "scale_shift" else (second, first)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Normalise each token of ``x`` and modulate it with the condition's scale and shift."""
        name = type(self).__name__
        if x.dim() < 2 or x.shape[-1] != self.num_features:
            raise ValueError(f"{name} x: expected tokens (N, *, C={self.num_features}), got shape "
                             f"{tuple(x.shape)}")
        check_shape(condition, ("N", "D"), f"{name} condition", {"N": x.shape[0], "D": self.cond_dim})
        check_finite(condition, f"{name} condition")
        scale, shift = self.scale_shift(condition)
        h = self.norm(x)
        return film(h, scale.to(h.dtype), shift.to(h.dtype), channel_dim=-1, plain_gamma=False)

    def extra_repr(self) -> str:
        return f"{self.num_features}, cond_dim={self.cond_dim}, shift={self.shift}, order={self.order!r}"


class AdaRMSNorm(AdaptiveLayerNorm):
    r"""RMS normalization of tokens modulated by a condition vector.

    .. math::
        y = \frac{x}{\sqrt{\overline{x^2} + \epsilon}}\,(1 + \gamma(c)) \;[+\, \beta(c)]

    :class:`AdaptiveLayerNorm` with ``norm="rms"``: diffusers' ``AdaLayerNormContinuous(norm_type=
    "rms_norm")`` (keys ``linear.*``, ``norm.weight`` with ``elementwise_affine=True``), or with
    ``shift=False`` the scale-only modulation of Lumina's ``LuminaRMSNormZero``. The gated form
    (RMSNorm-Zero, ``x + g · f(RMS(x)(1 + γ))``) is :class:`condnorm.AdaLNZero` with
    ``norm="rms", shift=False``.

    Example:
        >>> layer = AdaRMSNorm(32, cond_dim=16, shift=False)
        >>> layer(torch.randn(2, 10, 32), torch.randn(2, 16)).shape
        torch.Size([2, 10, 32])
    """

    NORM = "rms"


class ConditionalLayerNorm(AdaptiveLayerNorm):
    r"""Conditional layer normalization of speech sequences from a speaker or style vector.

    .. math::
        y = (1 + \gamma(s))\,\mathrm{LN}(x) + \beta(s), \qquad [\gamma, \beta] = W s + b

    AdaSpeech's CLN, Meta-StyleSpeech's SALN and StyleTTS2's ``AdaLayerNorm``: a plain
    projection of the style vector (no activation), scale first, layer norm eps 1e-5, on
    ``(N, T, C)`` sequences. StyleTTS2's ``fc.weight/bias`` load with ``strict=True`` (read as
    ``adaLN_modulation.1.*``). The projection starts at zero (StyleTTS2 uses PyTorch's default
    init; AdaSpeech initialises γ to 1 with a plain ``γ·LN(x)``, the same function at init).

    Example:
        >>> layer = ConditionalLayerNorm(80, cond_dim=128)
        >>> layer(torch.randn(2, 100, 80), torch.randn(2, 128)).shape
        torch.Size([2, 100, 80])
    """

    FOREIGN_KEYS: Mapping[str, str] = {"fc.": "adaLN_modulation.1."}

    def __init__(self, num_features: int, cond_dim: int, *, eps: float = 1e-5, activation: str | None = None,
                 **kw: Any) -> None:
        super().__init__(num_features, cond_dim, eps=eps, activation=activation, **kw)


AdaLN = AdaptiveLayerNorm
