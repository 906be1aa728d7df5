"""One entry per normalizer of condnorm.norms: how to build it and the context it needs.

The cross-cutting tests (``test_norm_matrix.py``: gradcheck, compile, ONNX, under SPADE /
AdaptiveInstanceNorm2d / CBN, make_norm, recalibrate) run every case; each family's own file
checks its formula against a restatement and its errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


def mask_like(x: Tensor, seed: int = 3) -> Tensor:
    """A random 0/1 region mask ``(N, 1, H, W)`` for ``x``."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(x.shape[0], 1, *x.shape[2:], generator=g) > 0.5).to(x.dtype)


def domains_for(x: Tensor) -> Tensor:
    """Domain ids ``0, 1, 0, 1, ...`` (both domains present for N ≥ 2)."""
    return torch.arange(x.shape[0]) % 2


def prev_stats(x: Tensor, channels: int = 4, seed: int = 5) -> dict[str, Tensor]:
    """A previous layer's (mean, var) estimate of ``channels`` channels."""
    g = torch.Generator().manual_seed(seed)
    return {"prev_mean": torch.randn(channels, generator=g).to(x.dtype),
            "prev_var": (torch.rand(channels, generator=g) + 0.5).to(x.dtype)}


@dataclass
class NormCase:
    """A normalizer kind, its constructor keywords and the context its forward needs."""

    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    context: Callable[[Tensor], dict[str, Tensor]] = lambda x: {}
    running: bool = False
    onnx_context: bool = True  # pass the context to the exported graph (eval mode ignores Kalman's)
    batch_stats_in_eval: bool = False  # eval mode standardises with the batch's statistics (RN)


CASES = [
    NormCase("switchable", running=True),
    NormCase("sparse_switchable", {"radius": 0.3}, running=True),
    NormCase("region", context=lambda x: {"mask": mask_like(x)}, batch_stats_in_eval=True),
    NormCase("region_learned", {"threshold": 0.5, "kernel_size": 3}, batch_stats_in_eval=True),
    NormCase("local_context", {"num_groups": 2, "window_size": 3}),
    NormCase("split", context=lambda x: {"domain": domains_for(x)}, running=True),
    NormCase("domain_specific", {"num_domains": 3}, context=lambda x: {"domain": domains_for(x)},
             running=True),
    NormCase("cross_iteration", {"window": 3}, running=True),
    NormCase("channel"),
    NormCase("frn", {"learnable_eps": True}),
    NormCase("extended_batch", running=True),
    NormCase("l1_batch", running=True),
    NormCase("kalman", {"prev_features": 4}, context=prev_stats, running=True, onnx_context=False),
    NormCase("cosine", {"kernel_size": 3}),
    NormCase("adaptive_batch", running=True),
]
IDS = [c.kind for c in CASES]
