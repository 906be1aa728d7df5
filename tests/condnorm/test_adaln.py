from __future__ import annotations

import pytest
import torch

import condnorm
from tests.condnorm.reference import layer_norm_last, rand, randomize, rms_norm_last, silu


def _proj(layer, c, act=silu):
    lin = layer.adaLN_modulation[1]
    return act(c) @ lin.weight.T + lin.bias


@pytest.mark.parametrize("order", ["scale_shift", "shift_scale"])
def test_adaln_formula(order: str, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize(condnorm.AdaLN(8, cond_dim=5, order=order, device=device, dtype=dtype))
    x, c = rand(2, 7, 8, dtype=dtype, device=device), rand(2, 5, seed=1, dtype=dtype, device=device)
    a, b = _proj(layer, c).chunk(2, 1)
    scale, shift = (a, b) if order == "scale_shift" else (b, a)
    expected = layer_norm_last(x, 1e-6) * (1 + scale[:, None]) + shift[:, None]
    torch.testing.assert_close(layer(x, c), expected, atol=1e-5, rtol=1e-5)


def test_adarmsnorm_formula_with_and_without_shift(device: torch.device, dtype: torch.dtype) -> None:
    x, c = rand(2, 7, 8, dtype=dtype, device=device) * 2, rand(2, 5, seed=1, dtype=dtype, device=device)
    layer = randomize(condnorm.AdaRMSNorm(8, cond_dim=5, device=device, dtype=dtype))
    scale, shift = _proj(layer, c).chunk(2, 1)
    torch.testing.assert_close(
        layer(x, c), rms_norm_last(x, 1e-6) * (1 + scale[:, None]) + shift[:, None], atol=1e-5, rtol=1e-5
    )
    scale_only = randomize(condnorm.AdaRMSNorm(8, cond_dim=5, shift=False, device=device, dtype=dtype))
    assert scale_only.adaLN_modulation[1].out_features == 8
    torch.testing.assert_close(
        scale_only(x, c), rms_norm_last(x, 1e-6) * (1 + _proj(scale_only, c)[:, None]), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("cls", [condnorm.AdaLN, condnorm.AdaRMSNorm, condnorm.ConditionalLayerNorm])
def test_identity_after_normalisation_at_init(cls, device: torch.device, dtype: torch.dtype) -> None:
    layer = cls(8, cond_dim=5, device=device, dtype=dtype)
    x = rand(2, 7, 8, dtype=dtype, device=device)
    torch.testing.assert_close(layer(x, rand(2, 5, seed=1, dtype=dtype, device=device)), layer.norm(x), rtol=0, atol=0)


def test_diffusers_ada_layer_norm_continuous_keys_and_forward() -> None:
    """AdaLayerNormContinuous(C, D, elementwise_affine=True, eps): linear, norm.weight/bias; scale, shift."""
    c, d = 8, 6
    sd = {
        "linear.weight": rand(2 * c, d, seed=1),
        "linear.bias": rand(2 * c, seed=2),
        "norm.weight": rand(c, seed=3),
        "norm.bias": rand(c, seed=4),
    }
    layer = condnorm.AdaLN(c, cond_dim=d, eps=1e-5, elementwise_affine=True)
    layer.load_state_dict(sd, strict=True)
    x, cond = rand(2, 5, c, seed=5), rand(2, d, seed=6)
    emb = silu(cond) @ sd["linear.weight"].T + sd["linear.bias"]
    scale, shift = emb[:, :c], emb[:, c:]
    normed = layer_norm_last(x, 1e-5) * sd["norm.weight"] + sd["norm.bias"]
    torch.testing.assert_close(
        layer(x, cond), normed * (1 + scale)[:, None, :] + shift[:, None, :], atol=1e-5, rtol=1e-5
    )
    assert set(layer.state_dict()) == {
        "adaLN_modulation.1.weight",
        "adaLN_modulation.1.bias",
        "norm.weight",
        "norm.bias",
    }


def test_diffusers_rms_continuous_keys() -> None:
    c, d = 8, 6
    sd = {"linear.weight": rand(2 * c, d, seed=1), "linear.bias": rand(2 * c, seed=2), "norm.weight": rand(c)}
    layer = condnorm.AdaRMSNorm(c, cond_dim=d, eps=1e-6, elementwise_affine=True)
    layer.load_state_dict(sd, strict=True)
    x, cond = rand(2, 5, c, seed=5), rand(2, d, seed=6)
    emb = silu(cond) @ sd["linear.weight"].T + sd["linear.bias"]
    expected = rms_norm_last(x, 1e-6) * sd["norm.weight"] * (1 + emb[:, None, :c]) + emb[:, None, c:]
    torch.testing.assert_close(layer(x, cond), expected, atol=1e-5, rtol=1e-5)


def test_styletts2_ada_layer_norm_keys_and_forward() -> None:
    """StyleTTS2 AdaLayerNorm(style_dim, channels): fc = Linear(style, 2C); (1 + γ) LN(x) + β, eps 1e-5."""
    c, s = 8, 6
    sd = {"fc.weight": rand(2 * c, s, seed=1), "fc.bias": rand(2 * c, seed=2)}
    layer = condnorm.ConditionalLayerNorm(c, cond_dim=s)
    layer.load_state_dict(sd, strict=True)
    x, style = rand(2, 11, c, seed=3), rand(2, s, seed=4)
    h = style @ sd["fc.weight"].T + sd["fc.bias"]
    gamma, beta = h[:, :c], h[:, c:]
    torch.testing.assert_close(
        layer(x, style), (1 + gamma[:, None]) * layer_norm_last(x, 1e-5) + beta[:, None], atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("cls", [condnorm.AdaLN, condnorm.AdaRMSNorm, condnorm.ConditionalLayerNorm])
def test_gradcheck_input_and_condition(cls) -> None:
    layer = randomize(cls(4, cond_dim=3, dtype=torch.float64))
    x = rand(2, 3, 4, dtype=torch.float64).requires_grad_()
    c = rand(2, 3, seed=1, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x, c))


def test_errors() -> None:
    layer = condnorm.AdaLN(8, cond_dim=5)
    with pytest.raises(ValueError, match=r"expected tokens \(N, \*, C=8\)"):
        layer(rand(2, 7, 6), rand(2, 5))
    with pytest.raises(ValueError, match=r"condition: expected shape \(N=2, D=5\)"):
        layer(rand(2, 7, 8), rand(3, 5))
    with pytest.raises(ValueError, match="order must be one of"):
        condnorm.AdaLN(8, cond_dim=5, order="gamma_beta")
    with pytest.raises(ValueError, match="kind must be 'layer' or 'rms'"):
        condnorm.AdaLN(8, cond_dim=5, norm="group")
