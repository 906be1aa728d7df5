"""FiLM: feature-wise linear modulation from a condition vector (Perez et al., AAAI 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .functional import film

__all__ = ["FiLM", "cond_projection", "make_activation"]

_ACTIVATIONS = {"mish": nn.Mish, "silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}


def make_activation(name: str | None) -> nn.Module:
    """The module for an activation name (``mish``, ``silu``, ``relu``, ``gelu``); ``None`` gives Identity.

    Raises:
        ValueError: for an unknown name (the message lists the choices).

    Example:
        >>> type(make_activation("silu")).__name__, type(make_activation(None)).__name__
        ('SiLU', 'Identity')
    """
    if name is None:
        return nn.Identity()
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(_ACTIVATIONS)} or None")
    return _ACTIVATIONS[name]()


def cond_projection(in_features: int, out_features: int, activation: str | None, *, zero: bool = True,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> nn.Sequential:
    """``Sequential(act, Linear(in, out))``, zeroed by default: the condition predictor of the vector layers.

    Index 1 is the linear layer whatever the activation (``Identity`` for None), so the keys are
    ``<name>.1.weight/bias`` as in ADM's ``emb_layers``, DiT's ``adaLN_modulation`` and Diffusion
    Policy's ``cond_encoder``.

    Example:
        >>> proj = cond_projection(8, 32, "silu")
        >>> sorted(proj.state_dict()), float(proj[1].weight.abs().sum())
        (['1.bias', '1.weight'], 0.0)
    """
    linear = nn.Linear(in_features, out_features, device=device, dtype=dtype)
    if zero:
        nn.init.zeros_(linear.weight)
        nn.init.zeros_(linear.bias)
    return nn.Sequential(make_activation(activation), linear)


class FiLM(nn.Module):
    r"""Scale and shift every channel by amounts predicted from a condition vector (no normalizer).

    .. math::
        \mathrm{out} = \gamma(c) \odot x + \beta(c), \qquad [\gamma, \beta] = W\,\mathrm{act}(c) + b

    ``cond_encoder`` is ``Sequential(act, Linear(D, 2C))``, γ the first ``C`` outputs, β the
    rest: Diffusion Policy's ``ConditionalResidualBlock1D.cond_encoder`` (``Mish``), so its
    ``cond_encoder.1.weight/bias`` load with ``strict=True`` (its ``Rearrange`` has no state).
    By default the scale is ``1 + γ`` with the projection zeroed, so the layer starts as the
    identity; ``plain_gamma=True`` is the paper's and Diffusion Policy's ``γ x + β`` with
    PyTorch's default ``Linear`` init (use it to load their weights).

    Args:
        num_features: C, channels of ``x``.
        cond_dim: D, size of the condition vector.
        channel_dim: where the channels are: 1 for ``(N, C, *)`` (any number of trailing dims),
            -1 for channels-last ``(N, T, C)``.
        activation: applied to the condition first (``"mish"``, ``"silu"``, ``"relu"``, ``"gelu"``, None).
        plain_gamma: ``γ x + β`` instead of ``(1 + γ) x + β``.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, *)``, or ``(N, *, C)`` with ``channel_dim=-1``
        - condition: ``(N, D)``
        - output: as ``x``

    Example:
        >>> layer = FiLM(16, cond_dim=8)
        >>> layer(torch.randn(2, 16, 50), torch.randn(2, 8)).shape
        torch.Size([2, 16, 50])
        >>> FiLM(16, cond_dim=8, channel_dim=-1)(torch.randn(2, 50, 16), torch.randn(2, 8)).shape
        torch.Size([2, 50, 16])
    """

    def __init__(
        self,
        num_features: int,
        cond_dim: int,
        *,
        channel_dim: int = 1,
        activation: str | None = "mish",
        plain_gamma: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if channel_dim not in (1, -1):
            raise ValueError(f"FiLM: channel_dim must be 1 or -1, got {channel_dim}")
        self.num_features = num_features
        self.cond_dim = cond_dim
        self.channel_dim = channel_dim
        self.plain_gamma = plain_gamma
        self.cond_encoder = cond_projection(cond_dim, 2 * num_features, activation, zero=not plain_gamma,
                                            device=device, dtype=dtype)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Modulate ``x`` with γ, β projected from ``condition``."""
        name = type(self).__name__
        if x.dim() < 2 or x.shape[self.channel_dim] != self.num_features:
            raise ValueError(f"{name} x: expected {self.num_features} channels at dim {self.channel_dim} "
                             f"(shape (N, C, *) or (N, *, C)), got shape {tuple(x.shape)}")
        check_shape(condition, ("N", "D"), f"{name} condition", {"N": x.shape[0], "D": self.cond_dim})
        check_finite(condition, f"{name} condition")
        gamma, beta = self.cond_encoder(condition).chunk(2, dim=1)
        return film(x, gamma, beta, channel_dim=self.channel_dim, plain_gamma=self.plain_gamma)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, cond_dim={self.cond_dim}, channel_dim={self.channel_dim}, "
                f"plain_gamma={self.plain_gamma}")

