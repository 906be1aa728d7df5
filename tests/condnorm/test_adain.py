"""AdaIN (statistics of a style map) and AdaptiveInstanceNorm2d (style vector): formulas, grads, errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from condnorm import AdaIN, AdaptiveInstanceNorm2d, functional, make_norm
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import adain, instance_norm, mean_std

# --- AdaIN ----------------------------------------------------------------------------------


def test_unbiased_reproduces_the_pytorch_adain_port(device: torch.device, dtype: torch.dtype) -> None:
    content = torch.randn(2, 8, 16, 16, device=device, dtype=dtype)
    style = torch.randn(2, 8, 8, 12, device=device, dtype=dtype) * 3 + 2
    out = AdaIN(8, unbiased=True)(content, style)
    torch.testing.assert_close(out, adain(content, style), atol=1e-5, rtol=0)


def test_biased_default_is_instance_norm_with_style_statistics(device: torch.device, dtype: torch.dtype) -> None:
    content = torch.randn(2, 4, 8, 8, device=device, dtype=dtype)
    style = torch.randn(2, 4, 6, 6, device=device, dtype=dtype) * 2 - 1
    s_mean, s_std = mean_std(style, unbiased=False)
    expected = instance_norm(content) * s_std + s_mean
    torch.testing.assert_close(AdaIN()(content, style), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_alpha_blends_with_the_content(alpha: float, device: torch.device, dtype: torch.dtype) -> None:
    content = torch.randn(1, 4, 8, 8, device=device, dtype=dtype)
    style = torch.randn(1, 4, 8, 8, device=device, dtype=dtype) * 2
    expected = alpha * adain(content, style) + (1 - alpha) * content
    out = AdaIN(unbiased=True)(content, style, alpha=alpha)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_module_equals_functional_and_accepts_mean_std() -> None:
    content, style = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 5, 5)
    layer = AdaIN(4, eps=1e-3, unbiased=True)
    expected = functional.adain(content, style, eps=1e-3, unbiased=True, alpha=0.7)
    torch.testing.assert_close(layer(content, style, alpha=0.7), expected, rtol=0, atol=0)
    stats = functional.calc_mean_std(style, eps=1e-3, unbiased=True)
    torch.testing.assert_close(layer(content, stats), layer(content, style))
    flat = tuple(t.flatten(1) for t in stats)  # (N, C) pairs work too
    torch.testing.assert_close(layer(content, flat), layer(content, style))


def test_adain_gradcheck_content_and_style() -> None:
    content = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    style = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, s: AdaIN(3, unbiased=True)(c, s, alpha=0.6), (content, style))


@pytest.mark.parametrize(
    ("content", "style", "match"),
    [
        (torch.randn(2, 4, 8), torch.randn(2, 4, 8, 8), r"AdaIN content: expected a 4-d"),
        (torch.randn(2, 5, 8, 8), torch.randn(2, 5, 8, 8), r"AdaIN content: .*'C' is 5, expected 4"),
        (torch.randn(2, 4, 8, 8), torch.randn(2, 3, 8, 8), r"adain style: .*'C' is 3, expected 4"),
        (torch.randn(2, 4, 8, 8), torch.randn(3, 4, 8, 8), r"adain style: .*'N' is 3, expected 2"),
    ],
)
def test_adain_errors(content: Tensor, style: Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdaIN(4)(content, style)


def test_adain_has_no_state() -> None:
    assert AdaIN(4).state_dict() == {}
    assert "unbiased=True" in repr(AdaIN(4, unbiased=True))


# --- AdaptiveInstanceNorm2d -----------------------------------------------------------------


def test_vector_formula(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(AdaptiveInstanceNorm2d(6, style_dim=5, device=device, dtype=dtype))
    x, s = torch.randn(2, 6, 5, 5, device=device, dtype=dtype), torch.randn(2, 5, device=device, dtype=dtype)
    w, b = layer.affine.weight, layer.affine.bias
    gamma = s @ w[:6].T + b[:6]
    beta = s @ w[6:].T + b[6:]
    expected = instance_norm(x) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
    torch.testing.assert_close(layer(x, s), expected, atol=1e-5, rtol=1e-5)


def test_vector_plain_gamma_formula(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(AdaptiveInstanceNorm2d(3, style_dim=2, plain_gamma=True, norm="layer", device=device,
                                              dtype=dtype))
    x, s = torch.randn(2, 3, 4, 4, device=device, dtype=dtype), torch.randn(2, 2, device=device, dtype=dtype)
    gamma, beta = (s @ layer.affine.weight.T + layer.affine.bias).chunk(2, 1)
    expected = make_norm("layer", 3).to(device, dtype)(x) * gamma[:, :, None, None] + beta[:, :, None, None]
    torch.testing.assert_close(layer(x, s), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("plain_gamma", [False, True])
def test_vector_identity_at_init(plain_gamma: bool, device: torch.device, dtype: torch.dtype) -> None:
    layer = AdaptiveInstanceNorm2d(8, style_dim=4, plain_gamma=plain_gamma, device=device, dtype=dtype)
    x = torch.randn(2, 8, 6, 6, device=device, dtype=dtype)
    torch.testing.assert_close(layer(x, torch.randn(2, 4, device=device, dtype=dtype)), instance_norm(x))


def test_vector_gradcheck_input_and_style() -> None:
    layer = randomize_(AdaptiveInstanceNorm2d(3, style_dim=4)).double()
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, s))


@pytest.mark.parametrize(
    ("x", "style", "error", "match"),
    [
        (torch.randn(2, 4, 8), torch.randn(2, 3), ValueError, r"AdaptiveInstanceNorm2d x: expected a 4-d"),
        (torch.randn(2, 5, 4, 4), torch.randn(2, 3), ValueError, r"x: .*'C' is 5, expected 4"),
        (torch.randn(2, 4, 4, 4), torch.randn(3, 3), ValueError, r"style: .*'N' is 3, expected 2"),
        (torch.randn(2, 4, 4, 4), torch.randn(2, 7), ValueError, r"style: .*'D' is 7, expected 3"),
        (torch.randn(2, 4, 4, 4), torch.randn(2, 3, 1, 1), ValueError, r"style: expected a 2-d"),
    ],
)
def test_vector_errors(x: Tensor, style: Tensor, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        AdaptiveInstanceNorm2d(4, style_dim=3)(x, style)


def test_vector_state_dict_round_trip() -> None:
    layer = randomize_(AdaptiveInstanceNorm2d(4, style_dim=3))
    clone = AdaptiveInstanceNorm2d(4, style_dim=3)
    clone.load_state_dict(layer.state_dict(), strict=True)
    x, s = torch.randn(2, 4, 4, 4), torch.randn(2, 3)
    torch.testing.assert_close(clone(x, s), layer(x, s), rtol=0, atol=0)
    assert set(layer.state_dict()) == {"affine.weight", "affine.bias"}
