"""ConditionalInstanceNorm2d: per-style tables, Dumoulin et al.'s style mixing, errors, state dicts."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from condnorm import CIN, ConditionalInstanceNorm2d, functional
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import instance_norm


def test_alias_and_shared_lookup() -> None:
    assert CIN is ConditionalInstanceNorm2d
    layer = CIN(4, num_styles=5)
    assert layer.num_styles == 5 and layer.gamma.weight.shape == (5, 4)
    assert "num_styles=5" in repr(layer)


def test_formula_style_ids(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CIN(6, num_styles=4, device=device, dtype=dtype))
    x, s = torch.randn(3, 6, 5, 5, device=device, dtype=dtype), torch.tensor([1, 3, 1], device=device)
    g, b = layer.gamma.weight[s], layer.beta.weight[s]
    expected = instance_norm(x) * (1 + g[:, :, None, None]) + b[:, :, None, None]
    torch.testing.assert_close(layer(x, s), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("plain_gamma", [False, True])
def test_style_mixing_is_the_convex_combination_of_rows(plain_gamma: bool, device: torch.device,
                                                        dtype: torch.dtype) -> None:
    layer = randomize_(CIN(6, num_styles=4, plain_gamma=plain_gamma, device=device, dtype=dtype))
    x = torch.randn(2, 6, 5, 5, device=device, dtype=dtype)
    w = torch.tensor([[0.25, 0.0, 0.75, 0.0], [0.1, 0.2, 0.3, 0.4]], device=device, dtype=dtype)
    gamma = sum(w[:, k, None] * layer.gamma.weight[k] for k in range(4))
    beta = sum(w[:, k, None] * layer.beta.weight[k] for k in range(4))
    scale = gamma if plain_gamma else 1 + gamma
    expected = instance_norm(x) * scale[:, :, None, None] + beta[:, :, None, None]
    torch.testing.assert_close(layer(x, w), expected, atol=1e-5, rtol=1e-5)
    # the end points of an interpolation are the styles themselves
    torch.testing.assert_close(layer(x, torch.eye(4, device=device, dtype=dtype)[[2, 0]]),
                               layer(x, torch.tensor([2, 0], device=device)))


@pytest.mark.parametrize("plain_gamma", [False, True])
def test_identity_at_init(plain_gamma: bool, device: torch.device, dtype: torch.dtype) -> None:
    layer = CIN(8, num_styles=3, plain_gamma=plain_gamma, device=device, dtype=dtype)
    x = torch.randn(2, 8, 4, 4, device=device, dtype=dtype)
    torch.testing.assert_close(layer(x, torch.tensor([2, 0], device=device)), instance_norm(x))
    torch.testing.assert_close(layer(x, torch.rand(2, 3, device=device, dtype=dtype).softmax(1)), instance_norm(x))
    if plain_gamma:  # Dumoulin et al.: γ tables start at 1, β at 0
        assert torch.all(layer.gamma.weight == 1) and torch.all(layer.beta.weight == 0)


def test_matches_functional_modulate(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CIN(4, num_styles=3, device=device, dtype=dtype))
    x, s = torch.randn(2, 4, 4, 4, device=device, dtype=dtype), torch.rand(2, 3, device=device, dtype=dtype)
    table = torch.cat([layer.gamma.weight, layer.beta.weight], 1)
    gamma, beta = functional.mix_table(table, s).chunk(2, 1)
    expected = functional.modulate(instance_norm(x), gamma[..., None, None], beta[..., None, None])
    torch.testing.assert_close(layer(x, s), expected, atol=1e-5, rtol=1e-5)


def test_gradcheck_input_and_style_weights() -> None:
    layer = randomize_(CIN(3, num_styles=4)).double()
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, w))


@pytest.mark.parametrize(
    ("x", "style", "error", "match"),
    [
        (torch.randn(4, 4, 4), torch.tensor([0, 1]), ValueError, r"ConditionalInstanceNorm2d x: expected a"),
        (torch.randn(2, 3, 4, 4), torch.tensor([0, 1]), ValueError, r"x: .*'C' is 3, expected 4"),
        (torch.randn(2, 4, 4, 4), torch.tensor([0]), ValueError, r"'N' is 1, expected 2"),
        (torch.randn(2, 4, 4, 4), torch.tensor([0, 5]), ValueError, r"ids must be in \[0, 5\), found \[5\]"),
        (torch.randn(2, 4, 4, 4), torch.tensor([0.0, 1.0]), TypeError, r"integer tensor of class ids"),
        (torch.randn(2, 4, 4, 4), torch.rand(2, 4), ValueError, r"'K' is 4, expected 5"),
    ],
)
def test_errors(x: Tensor, style: Tensor, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        CIN(4, num_styles=5)(x, style)


def test_state_dict_round_trip() -> None:
    layer = randomize_(CIN(4, num_styles=3))
    clone = CIN(4, num_styles=3)
    clone.load_state_dict(layer.state_dict(), strict=True)
    x, s = torch.randn(2, 4, 4, 4), torch.tensor([2, 1])
    torch.testing.assert_close(clone(x, s), layer(x, s), rtol=0, atol=0)
    assert set(layer.state_dict()) == {"gamma.weight", "beta.weight"}
