"""One entry per condnorm layer: how to build it and feed it, for the cross-cutting tests.

Each layer family's own test file checks its formula, gradients and errors; the matrix in
``test_layer_matrix.py`` runs every case here under compile, autocast, channels_last and
TorchScript. Add a case when you add a layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

import condnorm
from tests.condnorm.reference import onehot, randomize


@dataclass
class LayerCase:
    """A layer with random (non-identity) parameters and a batch of inputs for it."""

    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple[Tensor, ...]]
    bf16_atol: float = 0.1
    channels_last: bool = True
    notes: dict[str, str] = field(default_factory=dict)


randomize_ = functools.partial(randomize, std=0.2)
"""``reference.randomize`` at the scale these cases (and the older layer tests) were tuned for."""


def _x(n: int = 2, c: int = 8, h: int = 8, w: int = 8, seed: int = 2) -> Tensor:
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def _vec(n: int = 2, d: int = 6, seed: int = 3) -> Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _tokens(n: int = 2, t: int = 10, c: int = 8, seed: int = 4) -> Tensor:
    return torch.randn(n, t, c, generator=torch.Generator().manual_seed(seed))


def _branches(c: int) -> dict[str, nn.Module]:
    """Two residual branches for the gated adaLN layers (an attention stand-in and an MLP)."""
    return {"attn": nn.Linear(c, c), "mlp": nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(approximate="tanh"),
                                                          nn.Linear(2 * c, c))}


def _spectral_settled(module: nn.Module, *inputs: Tensor) -> nn.Module:
    """Run power iterations (training-mode forwards) so random SN weights get a valid σ estimate."""
    module.train()
    with torch.no_grad():
        for _ in range(20):
            module(*inputs)
    return module


CASES: list[LayerCase] = [
    LayerCase(
        "SPADE",
        lambda: randomize_(condnorm.SPADE(8, label_nc=5, hidden=16)),
        lambda: (_x(), onehot(2, 5, 16, 16, seed=1)),
    ),
    LayerCase(  # class ids: the per-window/patch path (eager), label_conv2d (traced/compiled)
        "SPADE-ids",
        lambda: randomize_(condnorm.SPADE(8, label_nc=5, hidden=16)),
        lambda: (_x(), onehot(2, 5, 16, 16, seed=1).argmax(1)),
    ),
    LayerCase(
        "CLADE",
        lambda: randomize_(condnorm.CLADE(8, label_nc=5)),
        lambda: (_x(), onehot(2, 5, 16, 16, seed=1)),
    ),
    LayerCase(
        "CLADE-ids",
        lambda: randomize_(condnorm.CLADE(8, label_nc=5, plain_gamma=True)),
        lambda: (_x(), onehot(2, 5, 16, 16, seed=1).argmax(1)),
    ),
    LayerCase(  # an explicit noise map keeps the output deterministic
        "RAIN",
        lambda: randomize_(condnorm.RAIN(8, label_nc=4, style_dim=6, hidden=16)),
        lambda: (_x(), onehot(2, 4, 16, 16, seed=1),
                 torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(3)),
                 torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4))),
    ),
    LayerCase(
        "CBN-ids",
        lambda: randomize_(condnorm.CBN(8, num_classes=5)),
        lambda: (_x(), torch.tensor([3, 0])),
    ),
    LayerCase(
        "CBN-weights",
        lambda: randomize_(condnorm.CBN(8, num_classes=5, plain_gamma=True)),
        lambda: (_x(), _vec(2, 5).softmax(1)),
    ),
    LayerCase(
        "CBN-spectral",
        lambda: _spectral_settled(randomize_(condnorm.CBN(8, cond_dim=6, spectral=True)), _x(), _vec()),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "CIN",
        lambda: randomize_(condnorm.CIN(8, num_styles=4)),
        lambda: (_x(), torch.tensor([1, 3])),
    ),
    LayerCase(
        "AdaIN",
        lambda: condnorm.AdaIN(8, unbiased=True),
        lambda: (_x(), _x(h=6, w=6, seed=5) * 2 + 1),
    ),
    LayerCase(
        "AdaptiveInstanceNorm2d",
        lambda: randomize_(condnorm.AdaptiveInstanceNorm2d(8, style_dim=6)),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "AdaCoN",
        lambda: randomize_(condnorm.AdaCoN(8, style_dim=6, groups=2, local_window=3, hidden=16)),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "InstanceEnhancementBatchNorm2d",
        lambda: randomize_(condnorm.InstanceEnhancementBatchNorm2d(8)),
        lambda: (_x(),),
    ),
    LayerCase(
        "AttentiveNorm2d",
        lambda: randomize_(condnorm.AttentiveNorm2d(8, num_mixtures=4, attention="softmax")),
        lambda: (_x(),),
    ),
    # The modern affine branch (issue 14). Token layers take x as (N, T, C): no channels_last.
    LayerCase(
        "FiLM",
        lambda: randomize_(condnorm.FiLM(8, cond_dim=6)),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "FiLM-tokens",
        lambda: randomize_(condnorm.FiLM(8, cond_dim=6, channel_dim=-1, plain_gamma=True)),
        lambda: (_tokens(), _vec()),
        channels_last=False,
    ),
    LayerCase(
        "AdaGN",
        lambda: randomize_(condnorm.AdaGN(8, emb_dim=6, num_groups=4)),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "AdaLN",
        lambda: randomize_(condnorm.AdaLN(8, cond_dim=6, elementwise_affine=True)),
        lambda: (_tokens(), _vec()),
        channels_last=False,
    ),
    LayerCase(
        "AdaRMSNorm",
        lambda: randomize_(condnorm.AdaRMSNorm(8, cond_dim=6)),
        lambda: (_tokens(), _vec()),
        channels_last=False,
    ),
    LayerCase(
        "ConditionalLayerNorm",
        lambda: randomize_(condnorm.ConditionalLayerNorm(8, cond_dim=6)),
        lambda: (_tokens(), _vec()),
        channels_last=False,
    ),
    LayerCase(
        "AdaLNZero",
        lambda: randomize_(condnorm.AdaLNZero(8, cond_dim=6, branches=_branches(8))),
        lambda: (_tokens(), _vec()),
        channels_last=False,
    ),
    LayerCase(
        "AdaLNZero-rms",
        lambda: randomize_(condnorm.AdaLNZero(8, cond_dim=6, branches=_branches(8), norm="rms", shift=False)),
        lambda: (_tokens(), _vec()),
        channels_last=False,
    ),
    LayerCase(
        "AdaLNSingle",
        lambda: randomize_(condnorm.AdaLNSingle(8, branches=_branches(8))),
        lambda: (_tokens(), _vec(d=48)),
        channels_last=False,
    ),
    LayerCase(
        "TokenAdaLN",
        lambda: randomize_(condnorm.TokenAdaLN(8, label_nc=5, grid_size=(2, 5), branches=_branches(8),
                                               kernel_size=3, hidden=6)),
        lambda: (_tokens(), onehot(2, 5, 16, 16, seed=1)),
        channels_last=False,
    ),
    LayerCase(
        "ModulatedConv2d",
        lambda: randomize_(condnorm.ModulatedConv2d(8, out_channels=6, style_dim=6)),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "ModulatedConv2d-up",
        lambda: randomize_(condnorm.ModulatedConv2d(8, out_channels=6, style_dim=6, up=2)),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "ModulatedConv2d-down",
        lambda: randomize_(condnorm.ModulatedConv2d(8, out_channels=6, style_dim=6, down=2)),
        lambda: (_x(), _vec()),
    ),
    LayerCase(
        "SPADEGroupNorm",
        lambda: randomize_(condnorm.SPADEGroupNorm(8, label_nc=5, emb_dim=6, num_groups=4, hidden=16)),
        lambda: (_x(), onehot(2, 5, 16, 16, seed=1), _vec()),
    ),
    LayerCase(
        "SpatialNorm",
        lambda: randomize_(condnorm.SpatialNorm(8, zq_channels=3, num_groups=4)),
        lambda: (_x(), _x(c=3, h=5, w=5, seed=6)),  # resized by the export tests to a size unlike x's
    ),
]

IDS = [c.name for c in CASES]
"""The cases' names, for ``pytest.mark.parametrize(..., ids=IDS)``."""
