"""Cross-Iteration BN (without the Taylor compensation) against a restatement over a sequence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

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


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window must be at least 1, got 0"):
        CrossIterationBatchNorm2d(4, window=0)
