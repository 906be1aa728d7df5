from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import condnorm
from condnorm.functional import modulated_conv2d
from tests.condnorm.reference import rand, randomize


def _zero_insert(x):
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, 2 * h - 1, 2 * w - 1)
    out[:, :, ::2, ::2] = x
    return out


def _blur_1331(x):
    """[1, 3, 3, 1] / 8 · 2 along each axis (separable; gain 4 overall), one pixel of zero padding."""
    c = x.shape[1]
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype, device=x.device) / 8 * 2
    x = F.pad(x, (1, 1, 1, 1))
    x = F.conv2d(x, taps.view(1, 1, 1, 4).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, taps.view(1, 1, 4, 1).repeat(c, 1, 1, 1), groups=c)


def _per_sample(x, weight, styles, demodulate=True, up=1, down=1):
    """One sample at a time: w' = w·s_i; w'' = w' / sqrt(Σ_{i,k} w'² + 1e-8); then an ordinary conv."""
    outs = []
    k = weight.shape[-1]
    for n in range(x.shape[0]):
        w = weight * styles[n].view(1, -1, 1, 1)
        if demodulate:
            w = w / torch.sqrt((w * w).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if down == 2:  # low-pass (gain 1) after two pixels of padding, then a stride-2 conv
            outs.append(F.conv2d(_blur_1331(F.pad(x[n : n + 1], (1, 1, 1, 1))) / 4, w, stride=2))
        elif up == 1:
            outs.append(F.conv2d(x[n : n + 1], w, padding=k // 2))
        else:  # transposed stride-2 conv = zero insertion + full padding + flipped kernel
            outs.append(_blur_1331(F.conv2d(_zero_insert(x[n : n + 1]), w.flip(2, 3), padding=k - 1)))
    return torch.cat(outs)


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("up, down", [(1, 1), (2, 1), (1, 2)])
def test_functional_matches_per_sample_loop(demodulate: bool, up: int, down: int, grouped: bool,
                                            device: torch.device, dtype: torch.dtype) -> None:
    x, w = rand(3, 4, 6, 8, dtype=dtype, device=device), rand(5, 4, 3, 3, seed=1, dtype=dtype, device=device)
    s = rand(3, 4, seed=2, dtype=dtype, device=device) + 1.5
    out = modulated_conv2d(x, w, s, demodulate=demodulate, up=up, down=down, grouped=grouped)
    assert out.shape == (3, 5, 6 * up // down, 8 * up // down)
    torch.testing.assert_close(out, _per_sample(x, w, s, demodulate, up, down), atol=1e-5, rtol=1e-5)


def test_stylegan2_synthesis_layer_state_dict_and_forward() -> None:
    """SynthesisLayer: affine = FC(w_dim, I, bias_init=1), gain 1/√w_dim; weight (O, I, 3, 3); bias."""
    i, o, w_dim, res = 6, 7, 10, 8
    sd = {
        "resample_filter": torch.ones(4, 4) / 16,
        "affine.weight": rand(i, w_dim, seed=1),
        "affine.bias": 1 + 0.1 * rand(i, seed=2),
        "weight": rand(o, i, 3, 3, seed=3),
        "noise_const": rand(res, res, seed=4),
        "noise_strength": torch.tensor(0.3),
        "bias": rand(o, seed=5),
    }
    layer = condnorm.ModulatedConv2d.from_stylegan2_state_dict(sd)
    x, w = rand(2, i, res, res, seed=6), rand(2, w_dim, seed=7)
    styles = w @ (sd["affine.weight"] / math.sqrt(w_dim)).T + sd["affine.bias"]
    expected = _per_sample(x, sd["weight"], styles) + sd["bias"].view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x, w), expected, atol=1e-5, rtol=1e-5)
    up = condnorm.ModulatedConv2d.from_stylegan2_state_dict(sd, up=2)  # conv0 of a SynthesisBlock
    torch.testing.assert_close(
        up(x, w),
        _per_sample(x, sd["weight"], styles, up=2) + sd["bias"].view(1, -1, 1, 1),
        atol=1e-5,
        rtol=1e-5,
    )


def test_stylegan2_torgb_state_dict_loads_directly() -> None:
    """ToRGBLayer: styles = affine(w) · 1/√(I k²); modulated conv without demodulation; + bias."""
    i, w_dim = 6, 10
    sd = {
        "affine.weight": rand(i, w_dim, seed=1),
        "affine.bias": 1 + rand(i, seed=2) * 0.1,
        "weight": rand(3, i, 1, 1, seed=3),
        "bias": rand(3, seed=4),
    }
    layer = condnorm.ModulatedConv2d(i, out_channels=3, style_dim=w_dim, kernel_size=1, demodulate=False)
    layer.load_state_dict(sd, strict=True)
    x, w = rand(2, i, 5, 5, seed=5), rand(2, w_dim, seed=6)
    styles = (w @ (sd["affine.weight"] / math.sqrt(w_dim)).T + sd["affine.bias"]) / math.sqrt(i)
    expected = _per_sample(x, sd["weight"], styles, demodulate=False) + sd["bias"].view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x, w), expected, atol=1e-5, rtol=1e-5)


def test_init_is_stylegan2s() -> None:
    layer = condnorm.ModulatedConv2d(64, out_channels=64, style_dim=128)
    assert torch.equal(layer.affine.bias, torch.ones(64)) and torch.equal(layer.bias, torch.zeros(64))
    assert 0.9 < layer.weight.std() < 1.1 and 0.9 < layer.affine.weight.std() < 1.1


def test_traced_activation_form_matches_grouped_conv() -> None:
    layer = randomize(condnorm.ModulatedConv2d(4, out_channels=5, style_dim=3, up=2), std=1.0)
    x, w = rand(2, 4, 5, 5), rand(2, 3, seed=1)
    traced = torch.jit.trace(layer, (x, w), check_trace=False)
    torch.testing.assert_close(traced(x, w), layer(x, w), atol=1e-5, rtol=1e-5)
    x3, w3 = rand(3, 4, 6, 6, seed=2), rand(3, 3, seed=3)
    torch.testing.assert_close(traced(x3, w3), layer(x3, w3), atol=1e-5, rtol=1e-5)


def test_gradcheck_input_and_style() -> None:
    layer = randomize(condnorm.ModulatedConv2d(2, out_channels=3, style_dim=2, dtype=torch.float64), std=1.0)
    x = rand(2, 2, 4, 4, dtype=torch.float64).requires_grad_()
    w = rand(2, 2, seed=1, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x, w))
    up = randomize(
        condnorm.ModulatedConv2d(2, out_channels=2, style_dim=2, up=2, dtype=torch.float64), std=1.0
    )
    assert torch.autograd.gradcheck(up, (x, w))


def test_errors() -> None:
    layer = condnorm.ModulatedConv2d(4, out_channels=5, style_dim=3)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, I=4, H, W\)"):
        layer(rand(2, 3, 5, 5), rand(2, 3))
    with pytest.raises(ValueError, match=r"style: expected shape \(N=2, D=3\)"):
        layer(rand(2, 4, 5, 5), rand(2, 4))
    with pytest.raises(ValueError, match="up/down must be 1, or one of them 2 with kernel_size=3"):
        condnorm.ModulatedConv2d(4, out_channels=5, style_dim=3, kernel_size=1, up=2)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        condnorm.ModulatedConv2d(4, out_channels=5, style_dim=3, kernel_size=2)
    with pytest.raises(ValueError, match="up/down must be 1, or one of them 2 with a 3×3 kernel"):
        modulated_conv2d(rand(1, 4, 5, 5), rand(5, 4, 3, 3), rand(1, 4), up=4)
