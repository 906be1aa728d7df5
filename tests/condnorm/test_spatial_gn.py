from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import condnorm
from tests.condnorm.reference import group_norm, nearest, onehot, rand, randomize, silu


def _sdm_spade_gn(x, seg, sd, prefix=""):
    """SDM SPADEGroupNorm: GN(32, no affine)(x) (1 + γ) + β; mlp_shared = conv3x3, ReLU on the nearest map."""
    m = nearest(seg, *x.shape[-2:])
    actv = torch.relu(
        F.conv2d(m, sd[prefix + "mlp_shared.0.weight"], sd[prefix + "mlp_shared.0.bias"], padding=1)
    )
    gamma = F.conv2d(actv, sd[prefix + "mlp_gamma.weight"], sd[prefix + "mlp_gamma.bias"], padding=1)
    beta = F.conv2d(actv, sd[prefix + "mlp_beta.weight"], sd[prefix + "mlp_beta.bias"], padding=1)
    return group_norm(x, 32, 1e-5) * (1 + gamma) + beta


def _sdm_state_dict(c: int, labels: int, hidden: int = 128) -> dict[str, torch.Tensor]:
    return {
        "mlp_shared.0.weight": rand(hidden, labels, 3, 3, seed=1) * 0.2,
        "mlp_shared.0.bias": rand(hidden, seed=2),
        "mlp_gamma.weight": rand(c, hidden, 3, 3, seed=3) * 0.05,
        "mlp_gamma.bias": rand(c, seed=4) * 0.1,
        "mlp_beta.weight": rand(c, hidden, 3, 3, seed=5) * 0.05,
        "mlp_beta.bias": rand(c, seed=6) * 0.1,
    }


def test_sdm_spade_group_norm_state_dict_and_forward() -> None:
    c, labels = 32, 4
    sd = _sdm_state_dict(c, labels)
    layer = condnorm.SPADEGroupNorm(c, label_nc=labels)
    layer.load_state_dict(sd, strict=True)
    x, seg = rand(2, c, 6, 6, seed=7), onehot(2, labels, 12, 12)
    torch.testing.assert_close(layer(x, seg), _sdm_spade_gn(x, seg, sd), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(layer(x, seg.argmax(1)), _sdm_spade_gn(x, seg, sd), atol=1e-4, rtol=1e-4)


def test_sdm_res_block_composition_with_embedding() -> None:
    """SDMResBlock(use_scale_shift_norm): out_norm(h, cond) * (1 + scale) + shift; emb_layers SiLU, Linear."""
    c, labels, e = 32, 4, 12
    block = {
        **{f"out_norm.{k}": v for k, v in _sdm_state_dict(c, labels).items()},
        "emb_layers.1.weight": rand(2 * c, e, seed=8),
        "emb_layers.1.bias": rand(2 * c, seed=9),
    }
    layer = condnorm.SPADEGroupNorm(c, label_nc=labels, emb_dim=e)
    layer.load_state_dict({k.removeprefix("out_norm."): v for k, v in block.items()}, strict=True)
    x, seg, emb = rand(2, c, 6, 6, seed=10), onehot(2, labels, 12, 12), rand(2, e, seed=11)
    emb_out = (silu(emb) @ block["emb_layers.1.weight"].T + block["emb_layers.1.bias"])[:, :, None, None]
    scale, shift = emb_out[:, :c], emb_out[:, c:]
    expected = _sdm_spade_gn(x, seg, block, "out_norm.") * (1 + scale) + shift
    torch.testing.assert_close(layer(x, seg, emb), expected, atol=1e-4, rtol=1e-4)


def test_spade_group_norm_identity_after_normalisation_at_init(device: torch.device, dtype: torch.dtype) -> None:
    layer = condnorm.SPADEGroupNorm(32, label_nc=3, emb_dim=5, hidden=8, device=device, dtype=dtype)
    x, seg = rand(2, 32, 4, 4, dtype=dtype, device=device), onehot(2, 3, 8, 8).to(device, dtype)
    emb = rand(2, 5, dtype=dtype, device=device)
    torch.testing.assert_close(layer(x, seg, emb), group_norm(x, 32, 1e-5), atol=1e-5, rtol=1e-5)


def test_diffusers_spatial_norm_state_dict_and_forward() -> None:
    """diffusers SpatialNorm(f_channels, zq_channels): GroupNorm(32, C, eps=1e-6); conv_y, conv_b 1×1."""
    c, z = 32, 3
    sd = {
        "norm_layer.weight": rand(c, seed=1),
        "norm_layer.bias": rand(c, seed=2),
        "conv_y.weight": rand(c, z, 1, 1, seed=3),
        "conv_y.bias": rand(c, seed=4),
        "conv_b.weight": rand(c, z, 1, 1, seed=5),
        "conv_b.bias": rand(c, seed=6),
    }
    layer = condnorm.SpatialNorm(c, zq_channels=z)
    layer.load_state_dict(sd, strict=True)
    f, zq = rand(2, c, 8, 8, seed=7), rand(2, z, 2, 4, seed=8)
    zq_up = nearest(zq, 8, 8)
    norm_f = (
        group_norm(f, 32, 1e-6) * sd["norm_layer.weight"][:, None, None]
        + sd["norm_layer.bias"][:, None, None]
    )
    expected = norm_f * F.conv2d(zq_up, sd["conv_y.weight"], sd["conv_y.bias"]) + F.conv2d(
        zq_up, sd["conv_b.weight"], sd["conv_b.bias"]
    )
    torch.testing.assert_close(layer(f, zq), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("plain", [True, False])
def test_spatial_norm_is_group_norm_at_init(plain: bool, device: torch.device, dtype: torch.dtype) -> None:
    layer = condnorm.SpatialNorm(32, zq_channels=3, plain_gamma=plain, device=device, dtype=dtype)
    f, zq = rand(2, 32, 4, 4, dtype=dtype, device=device), rand(2, 3, 2, 2, dtype=dtype, device=device)
    torch.testing.assert_close(layer(f, zq), group_norm(f, 32, 1e-6), atol=1e-5, rtol=1e-5)


def test_spatial_norm_one_plus_gamma_option(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize(condnorm.SpatialNorm(32, zq_channels=3, plain_gamma=False, device=device, dtype=dtype))
    f, zq = rand(2, 32, 4, 4, dtype=dtype, device=device), rand(2, 3, 4, 4, seed=1, dtype=dtype, device=device)
    norm_f = layer.norm_layer(f)
    torch.testing.assert_close(layer(f, zq), norm_f * (1 + layer.conv_y(zq)) + layer.conv_b(zq))


def test_gradcheck_inputs_and_conditions() -> None:
    d = torch.float64
    sgn = randomize(condnorm.SPADEGroupNorm(4, label_nc=2, emb_dim=3, num_groups=2, hidden=3, dtype=d))
    x = rand(2, 4, 3, 3, dtype=d).requires_grad_()
    seg = rand(2, 2, 3, 3, seed=1, dtype=d).requires_grad_()
    emb = rand(2, 3, seed=2, dtype=d).requires_grad_()
    assert torch.autograd.gradcheck(sgn, (x, seg, emb))
    sn = randomize(condnorm.SpatialNorm(4, zq_channels=2, num_groups=2, dtype=d))
    assert torch.autograd.gradcheck(sn, (x, rand(2, 2, 3, 3, seed=3, dtype=d).requires_grad_()))


def test_errors() -> None:
    layer = condnorm.SPADEGroupNorm(32, label_nc=3, emb_dim=5, hidden=8)
    x, seg = rand(2, 32, 4, 4), onehot(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"emb \(N, E=5\) is required"):
        layer(x, seg)
    with pytest.raises(ValueError, match=r"emb: expected shape \(N=2, E=5\)"):
        layer(x, seg, rand(2, 4))
    with pytest.raises(ValueError, match="built without emb_dim"):
        condnorm.SPADEGroupNorm(32, label_nc=3, hidden=8)(x, seg, rand(2, 5))
    sn = condnorm.SpatialNorm(32, zq_channels=3)
    with pytest.raises(ValueError, match=r"zq: expected shape \(N=2, Z=3, H', W'\)"):
        sn(x, rand(2, 4, 2, 2))
    with pytest.raises(ValueError, match=r"f: expected shape \(N, C=32, H, W\)"):
        sn(rand(2, 16, 4, 4), rand(2, 3, 2, 2))
