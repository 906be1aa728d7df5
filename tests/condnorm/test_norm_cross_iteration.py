"""Cross-Iteration BN (without the Taylor compensation) against a restatement over a sequence."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from condnorm import SPADE
from condnorm.norms import CrossIterationBatchNorm2d


def _batches(k: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(3, 4, 5, 5, generator=g) * (1 + i) + i for i in range(k)]


def test_statistics_pool_the_last_window_iterations() -> None:
    cibn = CrossIterationBatchNorm2d(4, window=3)
    history: list[tuple[torch.Tensor, torch.Tensor]] = []
    for x in _batches(5):
        mean, square = x.mean((0, 2, 3)), x.square().mean((0, 2, 3))
        history.insert(0, (mean, square))
        used = history[:3]
        pooled_mean = sum(m for m, _ in used) / len(used)
        pooled_square = sum(torch.maximum(s, m.square()) for m, s in used) / len(used)
        var = pooled_square - pooled_mean.square()
        expected = (x - pooled_mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5)
        torch.testing.assert_close(cibn.train()(x), expected, atol=1e-5, rtol=1e-4)


def test_window_one_and_the_burn_in_are_batch_norm() -> None:
    for cibn in (CrossIterationBatchNorm2d(4, window=1), CrossIterationBatchNorm2d(4, window=4, burn_in=3)):
        for x in _batches(3):
            torch.testing.assert_close(cibn.train()(x), F.batch_norm(x, None, None, training=True),
                                       atol=1e-5, rtol=1e-4)


def test_eval_uses_the_running_average_of_the_pooled_statistics() -> None:
    cibn = CrossIterationBatchNorm2d(4, window=2, momentum=1.0)
    a, b = _batches(2)
    cibn.train()(a)
    cibn(b)
    mean = (a.mean((0, 2, 3)) + b.mean((0, 2, 3))) / 2
    torch.testing.assert_close(cibn.running_mean, mean)
    x = _batches(3)[2]
    expected = (x - mean[:, None, None]) / torch.sqrt(cibn.running_var[:, None, None] + 1e-5)
    torch.testing.assert_close(cibn.eval()(x), expected)


def test_gradients_flow_through_the_current_batch_only() -> None:
    cibn = CrossIterationBatchNorm2d(4, window=3)
    cibn(_batches(1)[0])
    x = _batches(2)[1].requires_grad_()
    cibn(x).sum().backward()
    assert x.grad is not None and not cibn.past_mean.requires_grad


def test_the_taylor_compensation_moves_past_statistics_to_the_current_weights() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False).double()
    cibn = CrossIterationBatchNorm2d(4, window=2, conv_fan_in=27).double()
    h_old, h_new = torch.randn(2, 3, 6, 5, dtype=torch.float64), torch.randn(2, 3, 6, 5, dtype=torch.float64)
    cibn(conv(h_old), conv=conv, conv_input=h_old)

    def stats(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.conv2d(h_old, theta, padding=1)
        return y.mean((0, 2, 3)), y.square().mean((0, 2, 3))

    theta_old = conv.weight.detach().clone()
    jac_mean, jac_square = torch.autograd.functional.jacobian(stats, theta_old)  # (C, C, C_in, k, k)
    with torch.no_grad():
        conv.weight.add_(torch.randn_like(conv.weight) * 0.02)
    delta = conv.weight.detach() - theta_old
    mean_old, square_old = stats(theta_old)
    mean_c = mean_old + (jac_mean * delta).sum((1, 2, 3, 4))
    square_c = square_old + (jac_square * delta).sum((1, 2, 3, 4))
    true_mean, true_square = stats(conv.weight.detach())
    torch.testing.assert_close(mean_c, true_mean)  # means of a bias-free conv are linear in θ
    # mean squares are quadratic in θ: first order misses exactly E[(Δθ · patch)²]
    second_order = F.conv2d(h_old, delta, padding=1).square().mean((0, 2, 3))
    torch.testing.assert_close(true_square - square_c, second_order)

    x = conv(h_new).detach()
    mean_new, square_new = x.mean((0, 2, 3)), x.square().mean((0, 2, 3))
    pooled_mean = (mean_new + mean_c) / 2
    pooled_square = (torch.maximum(square_new, mean_new ** 2) + torch.maximum(square_c, mean_c ** 2)) / 2
    var = pooled_square - pooled_mean ** 2
    expected = (x - pooled_mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5)
    torch.testing.assert_close(cibn(x, conv=conv, conv_input=h_new), expected)


def test_cross_iteration_errors() -> None:
    with pytest.raises(ValueError, match="window must be at least 1, got 0"):
        CrossIterationBatchNorm2d(4, window=0)
    h = torch.randn(2, 3, 5, 5)
    biased = nn.Conv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match=r"needs conv= \(the preceding bias-free nn.Conv2d\), conv_input="):
        CrossIterationBatchNorm2d(4, conv_fan_in=27)(biased(h), conv=biased, conv_input=h)
    with pytest.raises(ValueError, match="needs conv="):
        CrossIterationBatchNorm2d(4)(torch.randn(2, 4, 5, 5), conv_input=h)
    conv = nn.Conv2d(3, 4, 1, bias=False)
    with pytest.raises(ValueError, match=r"\(4, 3, 1, 1\) does not match num_features=4, conv_fan_in=27"):
        CrossIterationBatchNorm2d(4, conv_fan_in=27)(conv(h), conv=conv, conv_input=h)


def test_compensated_path_compiles_and_passes_through_spade() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    layer = SPADE(4, label_nc=2, hidden=8, norm="cross_iteration", window=3, conv_fan_in=27)
    eager = copy.deepcopy(layer)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    for _ in range(3):
        h = torch.randn(2, 3, 6, 5)
        seg = torch.rand(2, 2, 6, 5)
        with torch.no_grad():
            conv.weight.add_(torch.randn_like(conv.weight) * 0.01)
        x = conv(h)
        context = {"conv": conv, "conv_input": h}
        torch.testing.assert_close(compiled(x, seg, **context), eager(x, seg, **context))
    torch.testing.assert_close(layer.param_free_norm.past_square_grad, eager.param_free_norm.past_square_grad)
    assert eager.param_free_norm.past_mean_grad.abs().sum() > 0
