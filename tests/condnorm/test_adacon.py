"""AdaCoN: identity at init, per-sample reference, the AdaIN reduction, gradients, errors, state dicts."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from condnorm import AdaCoN, AdaptiveConvNorm2d, AdaptiveInstanceNorm2d, functional
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import instance_norm


def reflect_index(size: int, pad: int) -> Tensor:
    """Indices of a reflect-padded axis (edge not repeated): -1 -> 1, size -> size - 2."""
    i = torch.arange(-pad, size + pad).abs()
    return torch.where(i >= size, 2 * (size - 1) - i, i)


def windows(x: Tensor, k: int) -> Tensor:
    """All k×k reflect-padded neighbourhoods: (..., k*k, H, W), tap (i, j) at index i*k + j."""
    h, w = x.shape[-2:]
    padded = x[..., reflect_index(h, k // 2)[:, None], reflect_index(w, k // 2)[None, :]]
    return torch.stack([padded[..., i:i + h, j:j + w] for i in range(k) for j in range(k)], dim=-3)


def local_norm(x: Tensor, window: int, eps: float = 1e-5) -> Tensor:
    patches = windows(x, window)
    return (x - patches.mean(-3)) / torch.sqrt(patches.var(-3, unbiased=False) + eps)


def adacon_reference(layer: AdaptiveConvNorm2d, x: Tensor, style: Tensor) -> Tensor:
    """One sample at a time: depthwise taps as shifted sums, pointwise as a per-group matmul."""
    c, g, k = layer.num_features, layer.groups, layer.kernel_size
    normalized = instance_norm(x) if layer.local_window is None else local_norm(x, layer.local_window)
    depthwise, pointwise, bias = layer.predict(style)
    outs = []
    for n in range(x.shape[0]):
        taps = windows(normalized[n], k)  # (C, k*k, H, W)
        spatial = (taps * depthwise[n].reshape(c, k * k, 1, 1)).sum(1)  # (C, H, W)
        grouped = spatial.reshape(g, c // g, -1)  # (G, C/G, HW)
        kernel = pointwise[n].reshape(g, c // g, c // g)  # (G, out within group, in within group)
        mixed = torch.bmm(kernel, grouped).reshape(c, *x.shape[-2:])
        outs.append(mixed + bias[n][:, None, None])
    return torch.stack(outs)


def test_alias() -> None:
    assert AdaCoN is AdaptiveConvNorm2d


@pytest.mark.parametrize("local_window", [None, 3, 5])
@pytest.mark.parametrize("groups", [None, 2, 1])
def test_identity_at_init(local_window: int | None, groups: int | None, device: torch.device,
                          dtype: torch.dtype) -> None:
    layer = AdaCoN(4, style_dim=3, groups=groups, local_window=local_window, hidden=8, device=device, dtype=dtype)
    x = torch.randn(2, 4, 7, 6, device=device, dtype=dtype)
    expected = instance_norm(x) if local_window is None else local_norm(x, local_window)
    torch.testing.assert_close(layer(x, torch.randn(2, 3, device=device, dtype=dtype)), expected, atol=1e-5,
                               rtol=1e-5)


@pytest.mark.parametrize(
    ("kernel_size", "groups", "local_window", "hidden"),
    [(3, None, None, None), (3, 2, 3, 8), (5, 1, None, 8), (1, 4, 5, None)],
)
def test_batched_equals_per_sample_reference(kernel_size: int, groups: int | None, local_window: int | None,
                                             hidden: int | None, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(AdaCoN(4, style_dim=3, kernel_size=kernel_size, groups=groups,
                              local_window=local_window, hidden=hidden, device=device, dtype=dtype))
    x, s = torch.randn(3, 4, 7, 6, device=device, dtype=dtype), torch.randn(3, 3, device=device, dtype=dtype)
    torch.testing.assert_close(layer(x, s), adacon_reference(layer, x, s), atol=1e-5, rtol=1e-5)


def test_predicted_kernel_shapes_and_offsets() -> None:
    layer = AdaCoN(6, style_dim=3, kernel_size=3, groups=2)
    depthwise, pointwise, bias = layer.predict(torch.randn(4, 3))
    assert depthwise.shape == (4, 6, 3, 3) and pointwise.shape == (4, 6, 3) and bias.shape == (4, 6)
    delta = torch.zeros(3, 3)
    delta[1, 1] = 1
    torch.testing.assert_close(depthwise, delta.expand(4, 6, 3, 3))
    torch.testing.assert_close(pointwise, torch.eye(3).repeat(2, 1).expand(4, 6, 3))
    assert torch.all(bias == 0)
    assert "offset" not in layer.state_dict()  # derived from the config, not saved


def test_reduces_to_adain_with_kernel_1_and_per_channel_groups(device: torch.device, dtype: torch.dtype) -> None:
    """k=1, G=C, global statistics: out = IN(x) · P D + b, i.e. AdaIN with 1+γ = P D and β = b."""
    layer = randomize_(AdaCoN(5, style_dim=3, kernel_size=1, hidden=6, device=device, dtype=dtype))
    x, s = torch.randn(2, 5, 6, 6, device=device, dtype=dtype), torch.randn(2, 3, device=device, dtype=dtype)
    depthwise, pointwise, bias = layer.predict(s)
    gamma = (depthwise.reshape(2, 5) * pointwise.reshape(2, 5) - 1)[:, :, None, None]
    expected = functional.modulate(instance_norm(x), gamma, bias[:, :, None, None])
    torch.testing.assert_close(layer(x, s), expected, atol=1e-5, rtol=1e-5)


def test_single_linear_mlp_is_exactly_adaptive_instance_norm() -> None:
    """With a one-layer MLP whose depthwise rows are zero, AdaCoN *is* AdaptiveInstanceNorm2d."""
    c, d = 4, 3
    adain = randomize_(AdaptiveInstanceNorm2d(c, style_dim=d))
    layer = AdaCoN(c, style_dim=d, kernel_size=1)
    last = layer.mlp[-1]  # rows: depthwise [0, C), pointwise [C, 2C), bias [2C, 3C)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.weight[c:] = adain.affine.weight  # γ rows then β rows, the same order
        last.bias[c:] = adain.affine.bias
    x, s = torch.randn(2, c, 5, 5), torch.randn(2, d)
    torch.testing.assert_close(layer(x, s), adain(x, s), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("local_window", [None, 3])
def test_gradcheck_input_and_style(local_window: int | None) -> None:
    layer = randomize_(AdaCoN(4, style_dim=3, groups=2, local_window=local_window, hidden=5)).double()
    x = torch.randn(2, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, s))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": 2}, r"kernel_size must be a positive odd integer, got 2"),
        ({"local_window": 4}, r"local_window must be an odd integer >= 3 or None, got 4"),
        ({"local_window": 1}, r"local_window must be an odd integer >= 3 or None, got 1"),
        ({"groups": 3}, r"groups=3 must divide num_features=4"),
    ],
)
def test_constructor_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdaCoN(4, style_dim=3, **kwargs)


@pytest.mark.parametrize(
    ("x", "style", "match"),
    [
        (torch.randn(2, 4, 8), torch.randn(2, 3), r"AdaCoN x: expected a 4-d"),
        (torch.randn(2, 5, 8, 8), torch.randn(2, 3), r"AdaCoN x: .*'C' is 5, expected 4"),
        (torch.randn(2, 4, 8, 8), torch.randn(3, 3), r"AdaCoN style: .*'N' is 3, expected 2"),
        (torch.randn(2, 4, 8, 8), torch.randn(2, 6), r"AdaCoN style: .*'D' is 6, expected 3"),
        (torch.randn(2, 4, 8, 8), torch.randn(2), r"AdaCoN style: expected a 2-d"),
        (torch.randn(2, 4, 2, 8), torch.randn(2, 3), r"spatial size 2x8 is too small for reflect"),
    ],
)
def test_forward_errors(x: Tensor, style: Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdaCoN(4, style_dim=3, local_window=5)(x, style)


def test_state_dict_round_trip() -> None:
    kwargs = {"style_dim": 3, "groups": 2, "local_window": 3, "hidden": 6}
    layer = randomize_(AdaCoN(4, **kwargs))
    clone = AdaCoN(4, **kwargs)
    clone.load_state_dict(layer.state_dict(), strict=True)
    x, s = torch.randn(2, 4, 6, 6), torch.randn(2, 3)
    torch.testing.assert_close(clone(x, s), layer(x, s), rtol=0, atol=0)
    assert set(layer.state_dict()) == {"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}
