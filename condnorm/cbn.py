"""Conditional batch normalization: a per-class or projected scale and shift (de Vries et al., BigGAN)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ._check import check_finite, check_shape
from .functional import mix_table, modulate
from .norm import NormSpec, apply_norm, make_norm

__all__ = ["CBN", "ConditionalBatchNorm2d"]


class ConditionalBatchNorm2d(nn.Module):
    r"""Batch normalization whose affine transform is chosen by a class or predicted from a vector.

    .. math::
        \mathrm{out} = \mathrm{norm}(x)\,(1 + \gamma(c)) + \beta(c)

    The condition ``c`` is one of

    - class ids ``(N,)``: :math:`\gamma(c) = \Gamma_c`, rows of ``[K, C]`` tables (``num_classes``);
    - soft class weights ``(N, K)``: :math:`\gamma(c) = \sum_k c_k \Gamma_k` (same tables);
    - a vector ``(N, D)`` (``cond_dim``): :math:`\gamma(c) = W_\gamma c + b_\gamma`, BigGAN's
      linear projections of a class embedding (and noise chunk).

    The tables / projections start at zero, so the layer is ``norm(x)`` at init. With
    ``plain_gamma=True`` the scale is :math:`\gamma(c)` itself, initialised to 1 (a
    projection's bias is 1); the soft-weight form then starts at ``norm(x)`` only for weights
    summing to one. With ``spectral=True`` the projections are spectrally normalised like
    BigGAN's ``SNLinear``. ``W / σ(W)`` is undefined for a zero ``W``, so their weights are
    then initialised orthogonally (BigGAN's init; the biases still start at zero) and the
    layer is **not** the identity at init. Class tables are never spectrally normalised
    (BigGAN: "applying SN to G's embedding seems to randomly cripple G").

    Parameter names: ``param_free_norm`` (the normalizer), ``gamma``, ``beta`` (an
    ``nn.Embedding`` table for classes, an ``nn.Linear`` for vectors).

    Args:
        num_features: C, channels of ``x``.
        num_classes: K, number of classes (table mode).
        cond_dim: D, size of the condition vector (projection mode).
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        spectral: spectrally normalise the projections (``cond_dim`` only).
        plain_gamma: use ``γ`` instead of ``1 + γ`` (γ initialised to 1).
        eps: the normalizer's epsilon.
        momentum: the normalizer's running-statistics momentum (kinds that keep them).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, H, W)``
        - condition: ``(N,)`` integer ids, ``(N, K)`` floating weights, or ``(N, D)`` vectors
        - output: ``(N, C, H, W)``

    Raises:
        ValueError: unless exactly one of ``num_classes`` / ``cond_dim`` is given, or for
            ``spectral=True`` with class tables.

    Example:
        >>> layer = ConditionalBatchNorm2d(8, num_classes=10)
        >>> layer(torch.randn(4, 8, 16, 16), torch.tensor([0, 3, 3, 9])).shape
        torch.Size([4, 8, 16, 16])
        >>> biggan = ConditionalBatchNorm2d(8, cond_dim=32, spectral=True)
        >>> biggan(torch.randn(4, 8, 16, 16), torch.randn(4, 32)).shape
        torch.Size([4, 8, 16, 16])
    """

    def __init__(
        self,
        num_features: int,
        *,
        num_classes: int | None = None,
        cond_dim: int | None = None,
        norm: NormSpec = "batch",
        spectral: bool = False,
        plain_gamma: bool = False,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if (num_classes is None) == (cond_dim is None):
            raise ValueError(f"{name}: give exactly one of num_classes= (class ids or weights) or "
                             f"cond_dim= (condition vectors), got num_classes={num_classes}, "
                             f"cond_dim={cond_dim}")
        if spectral and cond_dim is None:
            raise ValueError(f"{name}: spectral=True applies to the cond_dim projections; class "
                             "tables are not spectrally normalised")
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.num_classes = num_classes
        self.cond_dim = cond_dim
        self.spectral = spectral
        self.plain_gamma = plain_gamma
        self.param_free_norm = make_norm(norm, num_features, eps=eps, **dd)
        if hasattr(self.param_free_norm, "momentum"):
            self.param_free_norm.momentum = momentum
        if num_classes is not None:
            self.gamma: nn.Module = nn.Embedding(num_classes, num_features, **dd)
            self.beta: nn.Module = nn.Embedding(num_classes, num_features, **dd)
        else:
            self.gamma = nn.Linear(cond_dim, num_features, **dd)
            self.beta = nn.Linear(cond_dim, num_features, **dd)
        self._init_parameters()
        if spectral:  # after the orthogonal init: SN divides by σ(W), undefined for a zero W
            self.gamma, self.beta = spectral_norm(self.gamma), spectral_norm(self.beta)

    def _init_parameters(self) -> None:
        with torch.no_grad():
            for module, start in ((self.gamma, float(self.plain_gamma)), (self.beta, 0.0)):
                if isinstance(module, nn.Embedding):
                    module.weight.fill_(start)
                else:
                    (nn.init.orthogonal_ if self.spectral else nn.init.zeros_)(module.weight)
                    module.bias.fill_(start)

    def affine_params(self, condition: Tensor, batch_size: int | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(γ, β)``, each ``(N, C)``, for a condition (validated as in ``forward``)."""
        name = f"{type(self).__name__} condition"
        check_finite(condition, name)  # (N, D) or (N, K): cheap; ids are skipped
        if self.cond_dim is not None:
            sizes = {"D": self.cond_dim} if batch_size is None else {"D": self.cond_dim, "N": batch_size}
            check_shape(condition, ("N", "D"), f"{name} vector", sizes)
            if not condition.is_floating_point():
                raise TypeError(f"{name}: condition vectors must be floating point, got dtype "
                                f"{condition.dtype}; class ids need num_classes=, not cond_dim=")
            return self.gamma(condition), self.beta(condition)
        table = torch.cat([self.gamma.weight, self.beta.weight], dim=1)
        return mix_table(table, condition, batch_size=batch_size, name=name).chunk(2, dim=1)

    def forward(self, x: Tensor, condition: Tensor, **norm_kwargs: Any) -> Tensor:
        """Normalise ``x`` and modulate it with the condition's γ, β.

        ``norm_kwargs`` go to the normalizer unchanged (:func:`condnorm.norm.apply_norm`).
        """
        sizes = check_shape(x, ("N", "C", "H", "W"), f"{type(self).__name__} x", {"C": self.num_features})
        gamma, beta = self.affine_params(condition, sizes["N"])
        normalized = apply_norm(self.param_free_norm, x, norm_kwargs)
        return modulate(normalized, gamma[:, :, None, None], beta[:, :, None, None],
                        plain_gamma=self.plain_gamma)

    def extra_repr(self) -> str:
        cond = f"num_classes={self.num_classes}" if self.cond_dim is None else f"cond_dim={self.cond_dim}"
        return f"{self.num_features}, {cond}, spectral={self.spectral}, plain_gamma={self.plain_gamma}"


CBN = ConditionalBatchNorm2d
