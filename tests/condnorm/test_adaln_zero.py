from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import condnorm
from tests.condnorm.reference import layer_norm_last, nearest, rand, randomize, rms_norm_last, silu


def _branches(c: int, dtype=torch.float32, device=None) -> dict[str, nn.Module]:
    kw = {"dtype": dtype, "device": device}
    return {
        "attn": nn.Linear(c, c, **kw),
        "mlp": nn.Sequential(nn.Linear(c, 2 * c, **kw), nn.Tanh(), nn.Linear(2 * c, c, **kw)),
    }


def _dit_block(x, c, w, b, attn, mlp, eps=1e-6):
    """DiT: six chunks (shift, scale, gate)×2; modulate(x, shift, scale) = x (1 + scale) + shift."""
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (silu(c) @ w.T + b).chunk(6, dim=1)
    h = layer_norm_last(x, eps) * (1 + scale_msa.unsqueeze(1)) + shift_msa.unsqueeze(1)
    x = x + gate_msa.unsqueeze(1) * attn(h)
    h = layer_norm_last(x, eps) * (1 + scale_mlp.unsqueeze(1)) + shift_mlp.unsqueeze(1)
    return x + gate_mlp.unsqueeze(1) * mlp(h)


def test_adaln_zero_is_dit_block_with_its_keys() -> None:
    c = 8
    block = condnorm.AdaLNZero(c, cond_dim=c, branches=_branches(c))
    sd = {k: rand(*v.shape, seed=i) * 0.5 for i, (k, v) in enumerate(block.state_dict().items())}
    assert {"adaLN_modulation.1.weight", "adaLN_modulation.1.bias"} <= set(sd)
    assert sd["adaLN_modulation.1.weight"].shape == (6 * c, c)
    block.load_state_dict(sd, strict=True)
    x, cond = rand(2, 5, c, seed=20), rand(2, c, seed=21)
    expected = _dit_block(
        x, cond, sd["adaLN_modulation.1.weight"], sd["adaLN_modulation.1.bias"], block.attn, block.mlp
    )
    torch.testing.assert_close(block(x, cond), expected, atol=1e-5, rtol=1e-5)


def test_diffusers_ada_layer_norm_zero_keys() -> None:
    c = 8
    block = condnorm.AdaLNZero(c, cond_dim=c, branches=_branches(c))
    sd = {k.replace("adaLN_modulation.1.", "linear."): v for k, v in randomize(block).state_dict().items()}
    fresh = condnorm.AdaLNZero(c, cond_dim=c, branches=_branches(c))
    fresh.load_state_dict(sd, strict=True)
    x, cond = rand(2, 5, c), rand(2, c, seed=1)
    torch.testing.assert_close(fresh(x, cond), block(x, cond))


def test_identity_at_init(device: torch.device, dtype: torch.dtype) -> None:
    x = rand(2, 5, 8, dtype=dtype, device=device)
    block = condnorm.AdaLNZero(8, cond_dim=4, branches=_branches(8, dtype, device), device=device, dtype=dtype)
    torch.testing.assert_close(block(x, rand(2, 4, dtype=dtype, device=device)), x, rtol=0, atol=0)
    token = condnorm.TokenAdaLN(8, label_nc=3, grid_size=(1, 5), branches=_branches(8, dtype, device), hidden=6,
                                device=device, dtype=dtype)
    torch.testing.assert_close(token(x, rand(2, 3, 4, 4, dtype=dtype, device=device)), x, rtol=0, atol=0)


def test_rms_zero_without_shift_is_lumina_modulation(device: torch.device, dtype: torch.dtype) -> None:
    """LuminaRMSNormZero: (scale_msa, gate_msa, scale_mlp, gate_mlp); x̂ = RMS(x)(1 + scale)."""
    c = 8
    block = randomize(condnorm.AdaLNZero(c, cond_dim=6, branches=_branches(c, dtype, device), norm="rms",
                                         shift=False, device=device, dtype=dtype))
    x, cond = rand(2, 5, c, dtype=dtype, device=device), rand(2, 6, seed=1, dtype=dtype, device=device)
    lin = block.adaLN_modulation[1]
    scale_msa, gate_msa, scale_mlp, gate_mlp = (silu(cond) @ lin.weight.T + lin.bias).chunk(4, dim=1)
    h = x + gate_msa[:, None] * block.attn(rms_norm_last(x, 1e-6) * (1 + scale_msa[:, None]))
    h = h + gate_mlp[:, None] * block.mlp(rms_norm_last(h, 1e-6) * (1 + scale_mlp[:, None]))
    torch.testing.assert_close(block(x, cond), h, atol=1e-5, rtol=1e-5)


def test_adaln_single_pixart_keys_init_and_formula() -> None:
    c = 16
    t_block = condnorm.AdaLNSingle.shared_mlp(c)
    block = condnorm.AdaLNSingle(c, branches=_branches(c))
    assert block.scale_shift_table.shape == (6, c) and set(t_block.state_dict()) == {"1.weight", "1.bias"}
    assert 0.5 / math.sqrt(c) < block.scale_shift_table.std() < 2 / math.sqrt(c)  # randn / √C
    sd = {k: rand(*v.shape, seed=i) * 0.3 for i, (k, v) in enumerate(block.state_dict().items())}
    block.load_state_dict(sd, strict=True)
    randomize(t_block, seed=7)
    x, emb = rand(2, 5, c, seed=30), rand(2, c, seed=31)
    t = t_block(emb)
    # PixArt: (table[None] + t.reshape(B, 6, -1)).chunk(6, dim=1)
    # t2i_modulate(x, shift, scale) = x (1 + scale) + shift
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
        sd["scale_shift_table"][None] + t.reshape(2, 6, -1)
    ).chunk(6, dim=1)
    h = x + gate_msa * block.attn(layer_norm_last(x, 1e-6) * (1 + scale_msa) + shift_msa)
    h = h + gate_mlp * block.mlp(layer_norm_last(h, 1e-6) * (1 + scale_mlp) + shift_mlp)
    torch.testing.assert_close(block(x, t), h, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel_size, hidden", [(1, None), (3, 6)])
def test_token_adaln_per_token_formula(kernel_size: int, hidden: int | None, device: torch.device,
                                       dtype: torch.dtype) -> None:
    c, grid = 8, (2, 3)
    layer = randomize(
        condnorm.TokenAdaLN(
            c, label_nc=4, grid_size=grid, branches=_branches(c, dtype, device), kernel_size=kernel_size,
            hidden=hidden, device=device, dtype=dtype,
        )
    )
    x, m = rand(2, 6, c, dtype=dtype, device=device), rand(2, 4, 8, 9, seed=1, dtype=dtype, device=device)
    small = nearest(m, *grid)
    convs = [mod for mod in layer.head if isinstance(mod, nn.Conv2d)]
    p = small
    for i, conv in enumerate(convs):
        p = F.conv2d(p, conv.weight, conv.bias, padding=kernel_size // 2)
        p = silu(p) if i < len(convs) - 1 else p
    tokens = p.permute(0, 2, 3, 1).reshape(2, 6, 6 * c)  # row-major token order
    shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = tokens.chunk(6, dim=-1)
    h = x + gate_a * layer.attn(layer_norm_last(x, 1e-6) * (1 + scale_a) + shift_a)
    h = h + gate_m * layer.mlp(layer_norm_last(h, 1e-6) * (1 + scale_m) + shift_m)
    torch.testing.assert_close(layer(x, m), h, atol=1e-5, rtol=1e-5)


def test_gradcheck_input_and_condition() -> None:
    d = torch.float64
    zero = randomize(condnorm.AdaLNZero(4, cond_dim=3, branches=_branches(4, d), dtype=d))
    single = randomize(condnorm.AdaLNSingle(4, branches=_branches(4, d), dtype=d))
    token = randomize(condnorm.TokenAdaLN(4, label_nc=2, grid_size=(2, 2), branches=_branches(4, d), dtype=d))
    x = rand(2, 4, 4, dtype=d).requires_grad_()
    assert torch.autograd.gradcheck(zero, (x, rand(2, 3, seed=1, dtype=d).requires_grad_()))
    assert torch.autograd.gradcheck(single, (x, rand(2, 24, seed=2, dtype=d).requires_grad_()))
    assert torch.autograd.gradcheck(token, (x, rand(2, 2, 2, 2, seed=3, dtype=d).requires_grad_()))


def test_errors() -> None:
    block = condnorm.AdaLNZero(8, cond_dim=4, branches=_branches(8))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, T, C=8\)"):
        block(rand(2, 5, 6), rand(2, 4))
    with pytest.raises(ValueError, match=r"condition: expected shape \(N=2, D=4\)"):
        block(rand(2, 5, 8), rand(2, 5))
    with pytest.raises(ValueError, match="at least one branch"):
        condnorm.AdaLNZero(8, cond_dim=4, branches={})
    single = condnorm.AdaLNSingle(8, branches=_branches(8))
    with pytest.raises(ValueError, match=r"condition: expected shape \(N=2, K·C=48\)"):
        single(rand(2, 5, 8), rand(2, 8))
    token = condnorm.TokenAdaLN(8, label_nc=3, grid_size=(2, 2), branches=_branches(8))
    with pytest.raises(ValueError, match=r"expected T = 2·2 = 4 tokens"):
        token(rand(2, 5, 8), rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"condition: expected shape \(N=2, L=3, H, W\)"):
        token(rand(2, 4, 8), rand(2, 2, 4, 4))
