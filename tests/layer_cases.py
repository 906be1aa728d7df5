"""One entry per condnorm layer: how to build it and feed it, for the cross-cutting tests.

Each layer family's own test file checks its formula, gradients and errors; the matrix in
``test_layer_matrix.py`` runs every case here under compile, autocast, channels_last and
TorchScript. Add a case when you add a layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

import condnorm


@dataclass
class LayerCase:
    """A layer with random (non-identity) parameters and a batch of inputs for it."""

    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple[Tensor, ...]]
    bf16_atol: float = 0.1
    channels_last: bool = True
    notes: dict[str, str] = field(default_factory=dict)


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter a random value so identity-at-init cannot hide a bug."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module


def _onehot(n: int, labels: int, h: int, w: int, seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(labels, (n, h, w), generator=g)
    return torch.nn.functional.one_hot(ids, labels).permute(0, 3, 1, 2).float()


def _x(n: int = 2, c: int = 8, h: int = 8, w: int = 8, seed: int = 2) -> Tensor:
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


CASES: list[LayerCase] = [
    LayerCase(
        "SPADE",
        lambda: randomize_(condnorm.SPADE(8, label_nc=5, hidden=16)),
        lambda: (_x(), _onehot(2, 5, 16, 16)),
    ),
]
