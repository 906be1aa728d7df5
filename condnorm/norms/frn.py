r"""Filter Response Normalization with a Thresholded Linear Unit (Singh & Krishnan, CVPR 2020).

.. math::
    \nu^2 = \mathrm{E}_{HW}[x^2],\quad \hat x = \frac{x}{\sqrt{\nu^2 + |\epsilon|}},\quad
    z = \max(\gamma \hat x + \beta, \tau)

No mean is subtracted and nothing depends on the batch: no running statistics. Under a
conditional layer the affine ``γ, β`` is the layer's (``affine=False``: γ = 1, β = 0), so the
normalizer returns ``max(x̂, τ)`` and the layer modulates that; the learned per-channel ``tau``
(zeros at init) is part of FRN's standardisation and stays. ``learnable_eps=True`` learns ε as
the paper proposes for small ``H × W``: ``|ε_learned| + eps`` with ``ε_learned`` starting at
``eps_init`` (1e-4).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import Normalizer2d, dd

__all__ = ["FilterResponseNorm2d"]


class FilterResponseNorm2d(Normalizer2d):
    """FRN + TLU: divide by the root mean square over ``H × W``, then threshold at a learned τ.

    Args:
        num_features: C, the number of channels.
        eps: the fixed ε (the paper's 1e-6), or the floor of a learned one.
        learnable_eps: learn ε (parameter ``eps_learned``, one value as in the paper).
        eps_init: ``eps_learned``'s start.
        tlu: apply the thresholded linear unit ``max(·, τ)`` (parameter ``tau``).
        affine: add a per-channel ``weight`` and ``bias`` before the TLU.
        device: parameter device.
        dtype: parameter dtype.

    Example:
        >>> frn = FilterResponseNorm2d(8)
        >>> y = frn(torch.randn(2, 8, 5, 5))
        >>> y.shape, bool((y >= 0).all())  # τ = 0 at init: TLU is a ReLU
        (torch.Size([2, 8, 5, 5]), True)
    """

    def __init__(self, num_features: int, *, eps: float = 1e-6, learnable_eps: bool = False,
                 eps_init: float = 1e-4, tlu: bool = True, affine: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps=eps, affine=affine, device=device, dtype=dtype)
        self.learnable_eps = learnable_eps
        self.tlu = tlu
        if learnable_eps:
            self.eps_learned = nn.Parameter(torch.full((1,), eps_init, **dd(device, dtype)))
        if tlu:
            self.tau = nn.Parameter(torch.zeros(num_features, **dd(device, dtype)))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` by its filter response and threshold it."""
        self._check_input(x)
        nu2 = x.square().mean((2, 3), keepdim=True)
        eps = self.eps_learned.abs() + self.eps if self.learnable_eps else self.eps
        y = self._affine(x * torch.rsqrt(nu2 + eps))
        if not self.tlu:
            return y
        tau = self.tau[:, None, None]
        return (y - tau).relu() + tau  # max(y, τ); twice as fast as torch.maximum with its backward on CPU

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, learnable_eps={self.learnable_eps}, tlu={self.tlu}"
