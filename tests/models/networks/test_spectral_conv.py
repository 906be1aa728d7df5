"""spectral_conv: the spectral-norm hook's 1/σ moved onto the output equals the hooked conv exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from models.spade.spectral import spectral_conv, spectral_sigma


def _pair(bias: bool = True, kernel: int = 3) -> tuple[nn.Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    conv = nn.utils.spectral_norm(nn.Conv2d(6, 5, kernel, padding=kernel // 2, bias=bias).double())
    return conv, copy.deepcopy(conv)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("bias", "kernel"), [(True, 3), (False, 1)])
def test_output_scaling_equals_the_hook_with_gradients_and_buffers(training: bool, bias: bool,
                                                                   kernel: int) -> None:
    hooked, ours = _pair(bias, kernel)
    hooked.train(training), ours.train(training)
    x = torch.randn(1, 6, 3, 2, dtype=torch.float64)  # 30 outputs < 270 weights: output scaling
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    for _ in range(2):  # the second call sees the first call's power iteration
        ya, yb = hooked(xa), spectral_conv(ours, xb)
        torch.testing.assert_close(yb, ya, rtol=0, atol=1e-12)
    grad = torch.randn_like(ya)
    ya.backward(grad), yb.backward(grad)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=1e-12)
    for (name, a), b in zip(hooked.named_parameters(), ours.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-12, msg=name)
    for (name, a), b in zip(hooked.named_buffers(), ours.buffers()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)


def test_gradcheck_and_sigma_is_the_spectral_norm() -> None:
    _, conv = _pair()
    x = torch.randn(1, 6, 2, 2, dtype=torch.float64)
    for _ in range(100):  # power iterations to convergence
        spectral_conv(conv, x)
    conv.eval()  # no in-place updates between gradcheck's calls
    hook = next(iter(conv._forward_pre_hooks.values()))
    expected = torch.linalg.matrix_norm(conv.weight_orig.detach().flatten(1), ord=2)
    torch.testing.assert_close(spectral_sigma(conv, hook).detach(), expected, rtol=1e-8, atol=0)
    assert torch.autograd.gradcheck(lambda x, w, b: _functional(conv, x, w, b),
                                    (x.requires_grad_(), conv.weight_orig.detach().clone().requires_grad_(),
                                     conv.bias.detach().clone().requires_grad_()))


def _functional(conv: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """spectral_conv with the given weight and bias in place of the module's parameters."""
    saved = conv.weight_orig, conv.bias
    del conv.weight_orig, conv.bias
    conv.weight_orig, conv.bias = weight, bias
    try:
        return spectral_conv(conv, x)
    finally:
        del conv.weight_orig, conv.bias
        conv.weight_orig, conv.bias = saved


def test_large_outputs_and_plain_convs_take_the_ordinary_call() -> None:
    hooked, ours = _pair()
    x = torch.randn(2, 6, 16, 16, dtype=torch.float64)  # 2,560 outputs > 270 weights: weight scaling
    torch.testing.assert_close(spectral_conv(ours, x), hooked(x), rtol=0, atol=0)
    plain = nn.Conv2d(6, 5, 3).double()
    torch.testing.assert_close(spectral_conv(plain, x), plain(x), rtol=0, atol=0)


def test_generator_step_equals_the_hooked_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.spade import SPADEGenerator, blocks

    torch.manual_seed(0)
    ours = SPADEGenerator(5, ngf=4, crop_size=64).double().train()
    hooked = copy.deepcopy(ours)
    ids = torch.randint(5, (1, 64, 64))
    out = ours(ids)
    out.square().sum().backward()
    monkeypatch.setattr(blocks, "spectral_conv", lambda conv, x: conv(x))
    expected = hooked(ids)
    expected.square().sum().backward()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    for (name, a), b in zip(hooked.named_parameters(), ours.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-8, atol=1e-10, msg=name)
