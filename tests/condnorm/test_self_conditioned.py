"""IEBN and Attentive Normalization: formulas, BN/identity at init, gradients, errors, state dicts."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from condnorm import AttentiveNorm2d, InstanceEnhancementBatchNorm2d, make_norm
from condnorm.norm import PARAMETER_FREE_KINDS
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import batch_norm_train


def per_channel(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0], -1, 1, 1) if v.dim() == 2 else v.reshape(1, -1, 1, 1)


# --- InstanceEnhancementBatchNorm2d ---------------------------------------------------------


def test_iebn_formula(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(InstanceEnhancementBatchNorm2d(6, device=device, dtype=dtype))
    x = torch.randn(3, 6, 5, 5, device=device, dtype=dtype)
    pooled = x.mean((2, 3))  # (N, C)
    gate = 1 / (1 + torch.exp(-(layer.weight_readjust * pooled + layer.bias_readjust)))
    expected = batch_norm_train(x) * per_channel(layer.weight * gate) + per_channel(layer.bias)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_iebn_is_plain_batchnorm_at_init(device: torch.device, dtype: torch.dtype) -> None:
    layer = InstanceEnhancementBatchNorm2d(8, momentum=0.3, device=device, dtype=dtype)
    bn = nn.BatchNorm2d(8, momentum=0.3, device=device, dtype=dtype)
    x = torch.randn(4, 8, 5, 5, device=device, dtype=dtype) * 3 + 1
    torch.testing.assert_close(layer(x), bn(x))
    layer.eval()
    bn.eval()
    torch.testing.assert_close(layer(x), bn(x))  # running statistics moved alike
    assert layer.bias_readjust.eq(-1).all() and layer.weight_readjust.eq(0).all()
    torch.testing.assert_close(layer.weight, torch.full((8,), 1 + math.e, device=device, dtype=dtype))


def test_iebn_gradcheck_input() -> None:
    layer = randomize_(InstanceEnhancementBatchNorm2d(3)).double()
    x = torch.randn(3, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


# --- AttentiveNorm2d ------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["sigmoid", "softmax"])
def test_attentive_formula(attention: str, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(AttentiveNorm2d(6, num_mixtures=3, attention=attention, device=device, dtype=dtype))
    x = torch.randn(3, 6, 5, 5, device=device, dtype=dtype)
    logits = x.mean((2, 3)) @ layer.attention.weight.T + layer.attention.bias  # (N, K)
    lam = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True) if attention == "softmax" \
        else 1 / (1 + torch.exp(-logits))
    gamma = sum(lam[:, k, None] * layer.weight[k] for k in range(3))
    beta = sum(lam[:, k, None] * layer.bias[k] for k in range(3))
    expected = batch_norm_train(x) * (1 + per_channel(gamma)) + per_channel(beta)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.mixture_weights(x), lam)


@pytest.mark.parametrize("kind", PARAMETER_FREE_KINDS)
def test_attentive_identity_at_init(kind: str, device: torch.device, dtype: torch.dtype) -> None:
    layer = AttentiveNorm2d(8, num_mixtures=4, norm=kind, device=device, dtype=dtype)
    x = torch.randn(3, 8, 4, 4, device=device, dtype=dtype)
    torch.testing.assert_close(layer(x), make_norm(kind, 8).to(device, dtype)(x))


def test_attentive_components_get_different_gradients_at_init() -> None:
    layer = AttentiveNorm2d(4, num_mixtures=3)
    layer(torch.randn(4, 4, 5, 5) + torch.randn(4, 4, 1, 1)).square().sum().backward()
    grads = layer.weight.grad
    assert not torch.allclose(grads[0], grads[1])


def test_attentive_gradcheck_input() -> None:
    layer = randomize_(AttentiveNorm2d(3, num_mixtures=2, norm="instance")).double()
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


# --- both -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "x", "match"),
    [
        (InstanceEnhancementBatchNorm2d, torch.randn(2, 4, 8), r"InstanceEnhancementBatchNorm2d x: expected a 4-d"),
        (InstanceEnhancementBatchNorm2d, torch.randn(2, 5, 8, 8),
         r"InstanceEnhancementBatchNorm2d x: .*'C' is 5, expected 4"),
        (AttentiveNorm2d, torch.randn(2, 4, 8), r"AttentiveNorm2d x: expected a 4-d"),
        (AttentiveNorm2d, torch.randn(2, 5, 8, 8), r"AttentiveNorm2d x: .*'C' is 5, expected 4"),
    ],
)
def test_forward_errors(cls: type[nn.Module], x: Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(4)(x)


def test_attentive_constructor_errors() -> None:
    with pytest.raises(ValueError, match="attention must be 'sigmoid' or 'softmax', got 'relu'"):
        AttentiveNorm2d(4, attention="relu")


@pytest.mark.parametrize(
    ("build", "keys"),
    [
        (lambda: InstanceEnhancementBatchNorm2d(4), {"weight", "bias", "weight_readjust", "bias_readjust"}),
        (lambda: AttentiveNorm2d(4, num_mixtures=3),
         {"weight", "bias", "attention.weight", "param_free_norm.running_var"}),
    ],
    ids=["iebn", "attentive"],
)
def test_state_dict_round_trip(build: Callable[[], nn.Module], keys: set[str]) -> None:
    layer = randomize_(build())
    x = torch.randn(2, 4, 4, 4)
    layer(x)  # moves the running statistics
    clone = build()
    clone.load_state_dict(layer.state_dict(), strict=True)
    layer.eval()
    clone.eval()
    torch.testing.assert_close(clone(x), layer(x), rtol=0, atol=0)
    assert keys <= set(layer.state_dict())
