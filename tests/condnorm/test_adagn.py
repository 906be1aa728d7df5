from __future__ import annotations

import pytest
import torch
from torch import nn

import condnorm
from tests.condnorm.reference import group_norm, rand, randomize, silu


def _reference(x, emb, layer, groups=32, eps=1e-5, affine=True):
    h = group_norm(x, groups, eps)
    if affine:
        h = h * layer.weight[:, None, None] + layer.bias[:, None, None]
    lin = layer.emb_layers[1]
    out = silu(emb) @ lin.weight.T + lin.bias
    scale, shift = out[:, : x.shape[1]], out[:, x.shape[1] :]
    return h * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


@pytest.mark.parametrize("affine", [True, False])
def test_formula(affine: bool, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize(condnorm.AdaGN(64, emb_dim=16, affine=affine, device=device, dtype=dtype))
    x, emb = rand(2, 64, 5, 6, dtype=dtype, device=device) * 3 + 1, rand(2, 16, seed=1, dtype=dtype, device=device)
    torch.testing.assert_close(layer(x, emb), _reference(x, emb, layer, affine=affine), atol=1e-5, rtol=1e-5)


def test_identity_at_init_is_the_group_norm(device: torch.device, dtype: torch.dtype) -> None:
    layer = condnorm.AdaptiveGroupNorm(64, emb_dim=16, device=device, dtype=dtype)
    x = rand(2, 64, 4, 4, dtype=dtype, device=device)
    emb = rand(2, 16, seed=1, dtype=dtype, device=device)
    torch.testing.assert_close(layer(x, emb), group_norm(x, 32, 1e-5), atol=1e-5, rtol=1e-5)


def test_sequences_n_c_t(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize(condnorm.AdaGN(8, emb_dim=4, num_groups=4, device=device, dtype=dtype))
    x, emb = rand(2, 8, 7, dtype=dtype, device=device), rand(2, 4, seed=1, dtype=dtype, device=device)
    ref = _reference(x[..., None], emb, layer, groups=4)[..., 0]
    torch.testing.assert_close(layer(x, emb), ref, atol=1e-5, rtol=1e-5)


def test_adm_scale_shift_norm_state_dict_and_forward() -> None:
    """ADM ResBlock(use_scale_shift_norm): out_layers.0 = GroupNorm32(32, C); emb_layers = SiLU, Linear."""
    c, e = 64, 24
    adm = {
        "out_layers.0.weight": rand(c, seed=1),
        "out_layers.0.bias": rand(c, seed=2),
        "emb_layers.1.weight": rand(2 * c, e, seed=3),
        "emb_layers.1.bias": rand(2 * c, seed=4),
    }
    layer = condnorm.AdaGN(c, emb_dim=e)
    layer.load_state_dict(
        {
            "weight": adm["out_layers.0.weight"],
            "bias": adm["out_layers.0.bias"],
            "emb_layers.1.weight": adm["emb_layers.1.weight"],
            "emb_layers.1.bias": adm["emb_layers.1.bias"],
        },
        strict=True,
    )
    h, emb = rand(2, c, 8, 8, seed=5), rand(2, e, seed=6)
    # ADM: emb_out = emb_layers(emb)[..., None, None]; scale, shift = chunk(2)
    # out = out_norm(h) * (1 + scale) + shift
    emb_out = (silu(emb) @ adm["emb_layers.1.weight"].T + adm["emb_layers.1.bias"])[:, :, None, None]
    scale, shift = emb_out[:, :c], emb_out[:, c:]
    gn = (
        group_norm(h, 32, 1e-5) * adm["out_layers.0.weight"][:, None, None]
        + adm["out_layers.0.bias"][:, None, None]
    )
    torch.testing.assert_close(layer(h, emb), gn * (1 + scale) + shift, atol=1e-5, rtol=1e-5)


def test_diffusers_ada_group_norm_keys() -> None:
    """diffusers AdaGroupNorm(E, C, groups, act_fn): linear = Linear(E, 2C); group_norm without affine."""
    sd = {"linear.weight": rand(16, 6, seed=1), "linear.bias": rand(16, seed=2)}
    layer = condnorm.AdaGN(8, emb_dim=6, num_groups=4, affine=False, activation=None)
    layer.load_state_dict(sd, strict=True)
    x, emb = rand(2, 8, 3, 3), rand(2, 6, seed=3)
    out = emb @ sd["linear.weight"].T + sd["linear.bias"]
    expected = group_norm(x, 4, 1e-5) * (1 + out[:, :8, None, None]) + out[:, 8:, None, None]
    torch.testing.assert_close(layer(x, emb), expected, atol=1e-5, rtol=1e-5)


def test_convert_group_norm_to_adagn_keeps_its_affine() -> None:
    gn = randomize(nn.GroupNorm(4, 8, eps=1e-4))
    net = condnorm.convert(
        nn.Sequential(nn.Conv2d(3, 8, 3), gn),
        nn.GroupNorm,
        lambda m: condnorm.AdaGN.from_group_norm(m, emb_dim=5),
    )
    layer = net[1]
    assert isinstance(layer, condnorm.AdaGN) and layer.param_free_norm.num_groups == 4
    assert layer.param_free_norm.eps == 1e-4
    x = rand(2, 8, 6, 6)
    torch.testing.assert_close(layer(x, rand(2, 5)), gn(x), atol=1e-5, rtol=1e-5)  # zero emb_layers: GN


def test_gradcheck_input_and_embedding() -> None:
    layer = randomize(condnorm.AdaGN(4, emb_dim=3, num_groups=2, dtype=torch.float64))
    x = rand(2, 4, 3, 3, dtype=torch.float64).requires_grad_()
    emb = rand(2, 3, seed=1, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x, emb))


def test_errors() -> None:
    layer = condnorm.AdaGN(64, emb_dim=16)
    with pytest.raises(ValueError, match=r"expected shape \(N, C=64, \*\)"):
        layer(rand(2, 32, 4, 4), rand(2, 16))
    with pytest.raises(ValueError, match=r"emb: expected shape \(N=2, E=16\)"):
        layer(rand(2, 64, 4, 4), rand(2, 8))
    with pytest.raises(ValueError, match="not divisible by num_groups=32"):
        condnorm.AdaGN(48, emb_dim=16)
