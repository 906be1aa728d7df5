from __future__ import annotations

import pytest
import torch

import condnorm
from condnorm.functional import film
from tests.condnorm.reference import mish, rand, randomize


def _reference(x, c, weight, bias, plain: bool, channel_last: bool):
    out = mish(c) @ weight.T + bias
    half = out.shape[1] // 2
    gamma, beta = out[:, :half], out[:, half:]
    if not plain:
        gamma = gamma + 1
    if channel_last:
        return x * gamma[:, None, :] + beta[:, None, :]
    shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
    return x * gamma.reshape(shape) + beta.reshape(shape)


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("shape", [(2, 6, 11), (2, 6, 5, 7), (2, 6, 3, 4, 5)])
def test_formula_channels_first(plain: bool, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize(condnorm.FiLM(6, cond_dim=4, plain_gamma=plain, device=device, dtype=dtype))
    x, c = rand(*shape, dtype=dtype, device=device), rand(2, 4, seed=1, dtype=dtype, device=device)
    lin = layer.cond_encoder[1]
    torch.testing.assert_close(layer(x, c), _reference(x, c, lin.weight, lin.bias, plain, False))


def test_formula_channels_last(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize(condnorm.FiLM(6, cond_dim=4, channel_dim=-1, device=device, dtype=dtype))
    x, c = rand(2, 9, 6, dtype=dtype, device=device), rand(2, 4, seed=1, dtype=dtype, device=device)
    lin = layer.cond_encoder[1]
    torch.testing.assert_close(layer(x, c), _reference(x, c, lin.weight, lin.bias, False, True))


def test_identity_at_init(device: torch.device, dtype: torch.dtype) -> None:
    x = rand(3, 6, 10, dtype=dtype, device=device)
    layer = condnorm.FiLM(6, cond_dim=4, device=device, dtype=dtype)
    torch.testing.assert_close(layer(x, rand(3, 4, dtype=dtype, device=device)), x, rtol=0, atol=0)


def test_module_matches_functional(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize(condnorm.FiLM(6, cond_dim=4, activation=None, plain_gamma=True, device=device, dtype=dtype))
    x, c = rand(2, 6, 5, dtype=dtype, device=device), rand(2, 4, seed=1, dtype=dtype, device=device)
    gamma, beta = layer.cond_encoder(c).chunk(2, 1)
    torch.testing.assert_close(layer(x, c), film(x, gamma, beta))


def test_diffusion_policy_state_dict_and_forward() -> None:
    """ConditionalResidualBlock1D.cond_encoder = Sequential(Mish, Linear(cond_dim, 2C), Rearrange)."""
    c_out, cond_dim = 8, 5
    sd = {
        "cond_encoder.1.weight": rand(2 * c_out, cond_dim, seed=3),
        "cond_encoder.1.bias": rand(2 * c_out, seed=4),
    }
    layer = condnorm.FiLM(c_out, cond_dim=cond_dim, plain_gamma=True)
    layer.load_state_dict(sd, strict=True)
    out, cond = rand(2, c_out, 16, seed=5), rand(2, cond_dim, seed=6)
    # diffusion_policy: embed (B, 2C) -> (B, 2, C, 1); scale = embed[:, 0], bias = embed[:, 1]
    embed = (mish(cond) @ sd["cond_encoder.1.weight"].T + sd["cond_encoder.1.bias"]).reshape(2, 2, c_out, 1)
    expected = embed[:, 0] * out + embed[:, 1]
    torch.testing.assert_close(layer(out, cond), expected)


def test_gradcheck_input_and_condition() -> None:
    layer = randomize(condnorm.FiLM(3, cond_dim=2, dtype=torch.float64))
    x = rand(2, 3, 4, dtype=torch.float64).requires_grad_()
    c = rand(2, 2, seed=1, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x, c))


def test_errors() -> None:
    layer = condnorm.FiLM(6, cond_dim=4)
    with pytest.raises(ValueError, match=r"expected 6 channels at dim 1"):
        layer(rand(2, 5, 3), rand(2, 4))
    with pytest.raises(ValueError, match=r"condition: expected shape \(N=2, D=4\)"):
        layer(rand(2, 6, 3), rand(2, 3))
    with pytest.raises(ValueError, match="channel_dim must be 1 or -1"):
        condnorm.FiLM(6, cond_dim=4, channel_dim=2)
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        condnorm.FiLM(6, cond_dim=4, activation="tanh")
    with pytest.raises(ValueError, match="channel_dim must be 1"):
        film(rand(2, 6, 3), rand(2, 6), rand(2, 6), channel_dim=0)
