"""RAIN (SEAN): formula against a per-class loop, noise, gradients, errors, SEAN state dicts."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from condnorm import RAIN, SEAN, make_norm
from condnorm.norm import PARAMETER_FREE_KINDS
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import batch_norm_train, nearest, onehot, spade_gamma_beta


def sean_reference(x: Tensor, seg: Tensor, codes: Tensor, noise: Tensor, sd: dict[str, Tensor],
                   labels: int) -> Tensor:
    """SEAN's ACE, step by step, from a SEAN-layout state dict (``fc_mu{j}``), train-mode BN."""
    n, _, h, w = x.shape
    normalized = batch_norm_train(x + noise * sd["noise_var"].view(1, -1, 1, 1))
    m = nearest(seg, h, w)
    style_map = torch.zeros(n, codes.shape[-1], h, w, dtype=x.dtype, device=x.device)
    for b in range(n):
        for j in range(labels):
            style = torch.relu(codes[b, j] @ sd[f"fc_mu{j}.weight"].T + sd[f"fc_mu{j}.bias"])
            style_map[b] += m[b, j][None] * style[:, None, None]
    k = sd["conv_gamma.weight"].shape[-1]
    gamma_s = F.conv2d(style_map, sd["conv_gamma.weight"], sd["conv_gamma.bias"], padding=k // 2)
    beta_s = F.conv2d(style_map, sd["conv_beta.weight"], sd["conv_beta.bias"], padding=k // 2)
    gamma_o, beta_o = spade_gamma_beta(m, sd, "Spade.")
    a_g, a_b = torch.sigmoid(sd["blending_gamma"]), torch.sigmoid(sd["blending_beta"])
    gamma = a_g * gamma_s + (1 - a_g) * gamma_o
    beta = a_b * beta_s + (1 - a_b) * beta_o
    return normalized * (1 + gamma) + beta


def to_sean_layout(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Split the vectorised per-class linears into SEAN's fc_mu{j} entries."""
    out = {k: v for k, v in sd.items() if not k.startswith("fc_mu_")}
    for j, (weight, bias) in enumerate(zip(sd["fc_mu_weight"], sd["fc_mu_bias"])):
        out[f"fc_mu{j}.weight"], out[f"fc_mu{j}.bias"] = weight, bias
    return out


def inputs(n: int = 2, c: int = 6, labels: int = 3, d: int = 5, size: int = 8, seed: int = 0,
           device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """x, a one-hot map at twice x's size, region codes, noise: drawn in float32 on the CPU, then moved."""
    g = torch.Generator().manual_seed(seed)
    drawn = (torch.randn(n, c, size, size, generator=g), onehot(n, labels, 2 * size, 2 * size, seed),
             torch.randn(n, labels, d, generator=g), torch.randn(n, 1, size, size, generator=g))
    return tuple(t.to(device, dtype) for t in drawn)


@pytest.mark.parametrize("labels", [3, 25])
def test_formula_against_per_class_loop(labels: int, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(RAIN(6, label_nc=labels, style_dim=5, hidden=8, device=device, dtype=dtype))
    x, seg, codes, noise = inputs(labels=labels, device=device, dtype=dtype)
    expected = sean_reference(x, seg, codes, noise, to_sean_layout(layer.state_dict()), labels)
    torch.testing.assert_close(layer(x, seg, codes, noise), expected, atol=1e-5, rtol=1e-5)


def test_soft_map_blends_region_styles() -> None:
    layer = randomize_(RAIN(4, label_nc=3, style_dim=5, hidden=8, noise=False))
    x, _, codes, _ = inputs(c=4)
    seg = torch.softmax(torch.randn(2, 3, 8, 8), dim=1)
    expected = sean_reference(x, seg, codes, torch.zeros(2, 1, 8, 8),
                              {**to_sean_layout(layer.state_dict()), "noise_var": torch.zeros(4)}, 3)
    torch.testing.assert_close(layer(x, seg, codes), expected, atol=1e-5, rtol=1e-5)


def test_gradcheck_input_segmap_and_style_codes() -> None:
    layer = randomize_(RAIN(3, label_nc=2, style_dim=3, hidden=4)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=g).requires_grad_()
    seg = torch.rand(2, 2, 4, 4, dtype=torch.float64, generator=g).requires_grad_()
    codes = torch.randn(2, 2, 3, dtype=torch.float64, generator=g).requires_grad_()
    noise = torch.randn(2, 1, 4, 4, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x, seg, codes, noise))


@pytest.mark.parametrize("kind", PARAMETER_FREE_KINDS)
def test_identity_at_init(kind: str, device: torch.device, dtype: torch.dtype) -> None:
    layer = SEAN(8, label_nc=3, style_dim=4, hidden=8, norm=kind, device=device, dtype=dtype)
    x, seg, codes, _ = inputs(c=8, d=4, device=device, dtype=dtype)
    out = layer(x, seg, codes)  # noise is drawn, but noise_var starts at 0
    assert out.shape == x.shape
    torch.testing.assert_close(out, make_norm(kind, 8).to(device, dtype)(x))


def test_noise_is_seedable_and_shared_across_channels() -> None:
    layer = RAIN(4, label_nc=3, style_dim=5, hidden=8, norm="none")  # γ = β = 0 at init: out = x + noise
    with torch.no_grad():
        layer.noise_var.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    x, seg, codes, _ = inputs(c=4)
    a = layer(x, seg, codes, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, layer(x, seg, codes, torch.Generator().manual_seed(7)), rtol=0, atol=0)
    assert not torch.allclose(a, layer(x, seg, codes, torch.Generator().manual_seed(8)))
    z = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, layer(x, seg, codes, z), rtol=0, atol=0)
    torch.testing.assert_close(a - x, z * layer.noise_var.view(1, -1, 1, 1))  # one value per pixel
    torch.manual_seed(3)
    d = layer(x, seg, codes)
    torch.manual_seed(3)
    torch.testing.assert_close(d, layer(x, seg, codes), rtol=0, atol=0)
    assert not torch.allclose(d, a)


def test_noise_in_eval_mode_like_sean() -> None:
    layer = RAIN(4, label_nc=3, style_dim=5, hidden=8).eval()
    with torch.no_grad():
        layer.noise_var.fill_(1.0)
    x, seg, codes, _ = inputs(c=4)
    a = layer(x, seg, codes, torch.Generator().manual_seed(0))
    assert not torch.allclose(a, layer(x, seg, codes, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(layer(x, seg, codes, torch.zeros(2, 1, 8, 8)), layer.param_free_norm(x))


def test_noise_disabled() -> None:
    layer = RAIN(4, label_nc=3, style_dim=5, hidden=8, noise=False)
    assert layer.noise_var is None and "noise_var" not in layer.state_dict()
    x, seg, codes, z = inputs(c=4)
    with pytest.raises(ValueError, match="built with noise=False"):
        layer(x, seg, codes, z)


@pytest.mark.parametrize(
    ("args", "err", "match"),
    [
        (lambda x, s, c, z: (x[0], s, c, z), ValueError, r"RAIN x: expected a 4-d tensor"),
        (lambda x, s, c, z: (x[:, :5], s, c, z), ValueError, r"RAIN x: .*'C' is 5, expected 6"),
        (lambda x, s, c, z: (x, s[:1], c, z), ValueError, r"RAIN segmap: .*'N' is 1, expected 2"),
        (lambda x, s, c, z: (x, s[:, :2], c, z), ValueError, r"RAIN segmap: .*'L' is 2, expected 3"),
        (lambda x, s, c, z: (x, s, c[:1], z), ValueError, r"RAIN style_codes: .*'N' is 1, expected 2"),
        (lambda x, s, c, z: (x, s, c[:, :2], z), ValueError, r"RAIN style_codes: .*'L' is 2, expected 3"),
        (lambda x, s, c, z: (x, s, c[..., :4], z), ValueError, r"RAIN style_codes: .*'D' is 4, expected 5"),
        (lambda x, s, c, z: (x, s, c[0], z), ValueError, r"RAIN style_codes: expected a 3-d tensor"),
        (lambda x, s, c, z: (x, s, c, z[:, :, :4]), ValueError, r"RAIN noise: .*'H' is 4, expected 8"),
        (lambda x, s, c, z: (x, s, c, z.expand(2, 6, 8, 8)), ValueError, r"RAIN noise: .*'fixed' is 6"),
        (lambda x, s, c, z: (x, s, c, 0.5), TypeError, r"RAIN noise: expected a \(N, 1, H, W\) tensor"),
    ],
)
def test_errors(args, err: type[Exception], match: str) -> None:
    layer = RAIN(6, label_nc=3, style_dim=5, hidden=8)
    with pytest.raises(err, match=match):
        layer(*args(*inputs()))


def test_state_dict_round_trip() -> None:
    layer = randomize_(RAIN(6, label_nc=3, style_dim=5, hidden=8))
    x, seg, codes, z = inputs()
    layer(x, seg, codes, z)
    clone = RAIN(6, label_nc=3, style_dim=5, hidden=8)
    clone.load_state_dict(layer.state_dict(), strict=True)
    layer.eval()
    clone.eval()
    torch.testing.assert_close(clone(x, seg, codes, z), layer(x, seg, codes, z), rtol=0, atol=0)


def sean_state_dict(c: int, labels: int, d: int, seed: int = 0) -> OrderedDict[str, Tensor]:
    """A state dict with the keys and shapes of one SEAN ``ACE`` layer (hidden width 128)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, scale: float = 0.1) -> Tensor:
        return torch.randn(*shape, generator=g) * scale

    sd = OrderedDict([("blending_gamma", r(1, scale=1.0)), ("blending_beta", r(1, scale=1.0)),
                      ("noise_var", r(c))])
    for prefix in ("Spade.", ""):  # SEAN's inner SPADE carries an unused normalizer
        sd[prefix + "param_free_norm.running_mean"] = r(c)
        sd[prefix + "param_free_norm.running_var"] = r(c).abs() + 0.5
        sd[prefix + "param_free_norm.num_batches_tracked"] = torch.tensor(11)
        if prefix:
            sd["Spade.mlp_shared.0.weight"], sd["Spade.mlp_shared.0.bias"] = r(128, labels, 3, 3), r(128)
            sd["Spade.mlp_gamma.weight"], sd["Spade.mlp_gamma.bias"] = r(c, 128, 3, 3, scale=0.02), r(c)
            sd["Spade.mlp_beta.weight"], sd["Spade.mlp_beta.bias"] = r(c, 128, 3, 3, scale=0.02), r(c)
    for j in range(labels):
        sd[f"fc_mu{j}.weight"], sd[f"fc_mu{j}.bias"] = r(d, d, scale=0.3), r(d)
    sd["conv_gamma.weight"], sd["conv_gamma.bias"] = r(c, d, 3, 3), r(c)
    sd["conv_beta.weight"], sd["conv_beta.bias"] = r(c, d, 3, 3), r(c)
    return sd


def test_sean_state_dict_loads_strict() -> None:
    sd = sean_state_dict(4, 3, 8)
    layer = SEAN(4, label_nc=3, style_dim=8)
    layer.load_state_dict(sd, strict=True)
    torch.testing.assert_close(layer.fc_mu_weight[2], sd["fc_mu2.weight"], rtol=0, atol=0)
    assert torch.equal(layer.param_free_norm.running_mean, sd["param_free_norm.running_mean"])
    x, seg, codes, z = inputs(c=4, d=8)
    expected = sean_reference(x, seg, codes, z, sd, 3)  # train mode: batch statistics
    torch.testing.assert_close(layer(x, seg, codes, z), expected, atol=1e-5, rtol=1e-5)
    # Saving gives condnorm's vectorised layout, which loads back too.
    clone = SEAN(4, label_nc=3, style_dim=8)
    clone.load_state_dict(layer.state_dict(), strict=True)


def test_sean_state_dict_into_noise_free_layer() -> None:
    layer = RAIN(4, label_nc=3, style_dim=8, noise=False)
    layer.load_state_dict(sean_state_dict(4, 3, 8), strict=True)


def test_sean_state_dict_with_more_classes_is_rejected() -> None:
    """SEAN always has 19 fc_mu; a layer with fewer classes reports the surplus."""
    sd = sean_state_dict(4, 5, 8)
    sd["Spade.mlp_shared.0.weight"] = sd["Spade.mlp_shared.0.weight"][:, :3]
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*fc_mu3\.weight"):
        RAIN(4, label_nc=3, style_dim=8).load_state_dict(sd, strict=True)


def test_sean_state_dict_nested_prefix() -> None:
    sd = OrderedDict((f"up_0.ace_0.{k}", v) for k, v in sean_state_dict(4, 3, 8).items())
    block = torch.nn.Module()
    block.up_0 = torch.nn.Module()
    block.up_0.ace_0 = RAIN(4, label_nc=3, style_dim=8)
    block.load_state_dict(sd, strict=True)
    assert torch.equal(block.up_0.ace_0.fc_mu_bias[1], sd["up_0.ace_0.fc_mu1.bias"])
