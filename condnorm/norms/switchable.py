r"""Switchable Normalization (Luo et al., 2018) and its sparse variant (Shao et al., 2019).

Both mix the instance, layer and batch statistics of their input with learned importance
weights, one set for the means and one for the variances:

.. math::
    \mu = \sum_{k \in \{IN, LN, BN\}} w_k \mu_k, \qquad
    \sigma^2 = \sum_k w'_k \sigma^2_k, \qquad y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}

SN takes ``w = softmax(λ)``; SSN takes *sparsestmax*: the Euclidean projection of λ onto the
simplex minus an open ball around its centre, ``{p ∈ Δ : ‖p − 1/3‖ ≥ r}``. The paper grows the
radius ``r`` during training so that the weights end one-hot; at ``r = 0`` sparsestmax is
sparsemax (Martins & Astudillo, 2016). :func:`sparsestmax` computes the exact projection (the
nearest of the few candidate points, below); the radius is a buffer of
:class:`SparseSwitchableNorm2d` that the training loop sets (the module has no schedule).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..graph_mode import capturing_graph
from ._base import RunningStatsNorm2d, dd

__all__ = ["SparseSwitchableNorm2d", "SwitchableNorm2d", "sparsemax", "sparsestmax"]


def sparsemax(z: Tensor, dim: int = -1) -> Tensor:
    r"""Euclidean projection of ``z`` onto the probability simplex (Martins & Astudillo, 2016).

    .. math::
        \mathrm{sparsemax}(z) = \max(z - \tau, 0),\quad
        \tau = \frac{\sum_{j \le k} z_{(j)} - 1}{k},\quad
        k = \max\{k : 1 + k z_{(k)} > \textstyle\sum_{j \le k} z_{(j)}\}

    with ``z_(j)`` sorted in decreasing order.

    Example:
        >>> sparsemax(torch.tensor([1.0, 0.2, -1.0]))
        tensor([0.9000, 0.1000, 0.0000])
        >>> sparsemax(torch.zeros(3))
        tensor([0.3333, 0.3333, 0.3333])
    """
    z = z.movedim(dim, -1)
    ranked = z.sort(dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    cumulative = ranked.cumsum(-1)
    support = (1 + k * ranked > cumulative).to(z.dtype).sum(-1, keepdim=True)
    tau = (cumulative.gather(-1, support.long() - 1) - 1) / support
    return (z - tau).clamp_min(0).movedim(-1, dim)


MAX_RADIUS = math.sqrt(2 / 3)
"""Distance from the centre of the 3-simplex to its vertices: the largest radius sparsestmax accepts."""
_EDGES = ((1, 2), (2, 0), (0, 1))  # the non-zero components (a, b) of each edge


def sparsestmax(z: Tensor, radius: float | Tensor) -> Tensor:
    r"""Project ``z`` ``(..., 3)`` onto ``{p ∈ Δ : ‖p − u‖ ≥ r}``, ``u = 1/3`` (Shao et al., 2019).

    The set is the simplex with an open disc of radius ``r`` removed around its centre. The
    nearest point is one of: the sparsemax point (if it lies outside the disc); the radial
    projection ``u + r (z' − u) / ‖z' − u‖`` of ``z`` onto the circle (if inside the simplex;
    ``z'``: ``z`` projected onto ``Σp = 1``; direction ``e₀ − u`` when ``z' = u``); the nearest
    point of each edge outside the disc (edge points ``p_a − p_b = s`` with
    ``|s| ≥ √(2 (r² − 1/6))``). The feasible candidate nearest to ``z`` is returned.

    Args:
        z: scores, last dimension 3.
        radius: ``r`` in ``[0, √(2/3)]``; 0 gives sparsemax, ``√(2/3)`` a vertex.

    Raises:
        ValueError: if the last dimension is not 3, or for a radius outside the range.

    Example:
        >>> sparsestmax(torch.tensor([0.5, 0.4, 0.1]), 0.0)
        tensor([0.5000, 0.4000, 0.1000])
        >>> [round(v, 4) for v in sparsestmax(torch.tensor([0.5, 0.4, 0.1]), 0.5).tolist()]
        [0.7041, 0.2959, 0.0]
    """
    if z.shape[-1] != 3:
        raise ValueError(f"sparsestmax: expects 3 scores in the last dimension, got shape {tuple(z.shape)}")
    if not capturing_graph() and not 0 <= float(radius) <= MAX_RADIUS + 1e-6:
        raise ValueError(f"sparsestmax: radius must be in [0, √(2/3) = {MAX_RADIUS:.4f}], "
                         f"got {float(radius)}")
    r = torch.as_tensor(radius, dtype=z.dtype, device=z.device)
    eye = torch.eye(3, dtype=z.dtype, device=z.device)
    u = eye.mean(0)
    simplex = sparsemax(z)
    direction = z - z.mean(-1, keepdim=True)  # z' − u
    length = direction.norm(dim=-1, keepdim=True)
    direction = torch.where(length > 0, direction, eye[0] - u)
    circle = u + r * direction / direction.norm(dim=-1, keepdim=True)
    s_min = (2 * (r.square() - 1 / 6)).clamp(0, 1).sqrt()
    edges = []
    for a, b in _EDGES:  # points (1 + s)/2 e_a + (1 − s)/2 e_b, |s| ≥ s_min
        gap = (z[..., a] - z[..., b]).clamp(-1, 1)
        s = (torch.where(gap >= 0, 1.0, -1.0) * torch.maximum(gap.abs(), s_min))[..., None]
        edges.append((1 + s) / 2 * eye[a] + (1 - s) / 2 * eye[b])
    candidates = torch.stack([simplex, circle, *edges], dim=-2)  # (..., 5, 3)
    feasible = torch.stack([(simplex - u).norm(dim=-1) >= r, (circle >= 0).all(-1),
                            *[torch.ones_like(r, dtype=torch.bool).expand(z.shape[:-1])] * 3], -1)
    distance = torch.where(feasible, (candidates - z[..., None, :]).square().sum(-1), torch.inf)
    best = distance.argmin(-1, keepdim=True)[..., None].expand(*z.shape[:-1], 1, 3)
    return candidates.gather(-2, best).squeeze(-2)


class SwitchableNorm2d(RunningStatsNorm2d):
    r"""Switchable Normalization: softmax-weighted IN, LN and BN statistics (Luo et al., 2018).

    .. math::
        \mu_{IN} = \mathrm{E}_{HW}[x],\ \sigma^2_{IN} = \mathrm{Var}_{HW}[x];\quad
        \mu_{LN} = \mathrm{E}_C[\mu_{IN}],\
        \sigma^2_{LN} = \mathrm{E}_C[\sigma^2_{IN} + \mu^2_{IN}] - \mu^2_{LN};\quad
        \mu_{BN} = \mathrm{E}_N[\mu_{IN}],\
        \sigma^2_{BN} = \mathrm{E}_N[\sigma^2_{IN} + \mu^2_{IN}] - \mu^2_{BN}

    and ``μ = Σ softmax(mean_weight)_k μ_k``, ``σ² = Σ softmax(var_weight)_k σ²_k`` (order IN,
    LN, BN; both weights start at one, i.e. equal shares). The BN statistics keep moving
    averages (``running_mean``, ``running_var``) that replace them in eval mode; IN and LN are
    always computed from the sample. Variances are biased (the official code's IN/LN use the
    unbiased one; the difference is ``HW/(HW−1)``).

    Args:
        num_features: C, the number of channels.
        eps: added to the mixed variance.
        momentum: BN running-average momentum (None: cumulative average).
        affine: add a per-channel ``weight`` and ``bias``.
        track_running_stats: keep BN moving averages for eval mode.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, C, H, W)``; output: same.

    Example:
        >>> sn = SwitchableNorm2d(8)
        >>> sn(torch.randn(4, 8, 5, 5)).shape, sn.mean_weight.tolist()
        (torch.Size([4, 8, 5, 5]), [1.0, 1.0, 1.0])
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, mean_shape=(num_features,), var_shape=(num_features,), eps=eps,
                         momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         device=device, dtype=dtype)
        self.mean_weight = nn.Parameter(torch.ones(3, **dd(device, dtype)))
        self.var_weight = nn.Parameter(torch.ones(3, **dd(device, dtype)))

    def importance(self) -> tuple[Tensor, Tensor]:
        """The IN, LN, BN shares of the means and of the variances, each ``(3,)`` summing to one."""
        return self.mean_weight.softmax(0), self.var_weight.softmax(0)

    def forward(self, x: Tensor) -> Tensor:
        """Standardise ``x`` with the mixed statistics."""
        self._check_input(x)
        mean_in = x.mean((2, 3), keepdim=True)
        var_in = x.var((2, 3), keepdim=True, correction=0)
        square_in = var_in + mean_in.square()
        mean_ln = mean_in.mean(1, keepdim=True)
        var_ln = square_in.mean(1, keepdim=True) - mean_ln.square()
        if self.use_batch_stats:
            mean_bn = mean_in.mean(0, keepdim=True)
            var_bn = square_in.mean(0, keepdim=True) - mean_bn.square()
            self._track(mean_bn.flatten(), var_bn.flatten(), x.numel() // x.shape[1])
        else:
            mean_bn, var_bn = self.running_mean[:, None, None], self.running_var[:, None, None]
        wm, wv = self.importance()
        mean = wm[0] * mean_in + wm[1] * mean_ln + wm[2] * mean_bn
        var = wv[0] * var_in + wv[1] * var_ln + wv[2] * var_bn
        return self._affine((x - mean) * torch.rsqrt(var + self.eps))


class SparseSwitchableNorm2d(SwitchableNorm2d):
    """Sparse Switchable Normalization: the importance weights are sparse (Shao et al., 2019).

    As :class:`SwitchableNorm2d` with :func:`sparsestmax` in place of softmax, so weights can be
    exactly zero, and one-hot once the radius reaches ``√(2/3)``. The paper grows the radius
    during training; set the ``radius`` buffer from the training loop
    (``ssn.radius.fill_(r)``; it is saved with the state dict). The weights start at one: equal
    shares at radius 0, as in SN.

    Args:
        num_features: C, the number of channels.
        radius: the sparsestmax radius at construction (0: sparsemax).
        **kw: as :class:`SwitchableNorm2d` (``eps``, ``momentum``, ``affine``, ...).

    Example:
        >>> ssn = SparseSwitchableNorm2d(4)
        >>> with torch.no_grad():
        ...     _ = ssn.mean_weight.copy_(torch.tensor([2.0, 0.0, 0.0]))
        >>> ssn.importance()[0].tolist()
        [1.0, 0.0, 0.0]
        >>> _ = ssn.radius.fill_(MAX_RADIUS)
        >>> ssn.importance()[1].tolist()  # equal var weights: ties go to IN
        [1.0, 0.0, 0.0]
    """

    def __init__(self, num_features: int, *, radius: float = 0.0, **kw: Any) -> None:
        super().__init__(num_features, **kw)
        factory = {"device": kw.get("device"), "dtype": kw.get("dtype")}
        self.register_buffer("radius", torch.tensor(float(radius), **factory))

    def importance(self) -> tuple[Tensor, Tensor]:
        """Sparsestmax of the mean and variance weights, each ``(3,)`` summing to one."""
        return sparsestmax(self.mean_weight, self.radius), sparsestmax(self.var_weight, self.radius)
