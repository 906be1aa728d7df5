"""The seed's AdaptiveBatchNorm2d: a·x + b·BN(x)."""

from __future__ import annotations

import torch
from torch import nn

from condnorm import CBN
from condnorm.norms import AdaptiveBatchNorm2d


def test_blend_of_the_input_and_its_batch_norm_in_train_and_eval() -> None:
    m = AdaptiveBatchNorm2d(5)
    bn = nn.BatchNorm2d(5, affine=False)
    with torch.no_grad():
        m.a.fill_(0.7)
        m.b.fill_(-1.3)
    x = torch.randn(4, 5, 3, 3) * 2 + 1
    torch.testing.assert_close(m.train()(x), 0.7 * x + -1.3 * bn.train()(x))
    other = torch.randn(4, 5, 3, 3)
    torch.testing.assert_close(m.eval()(other), 0.7 * other - 1.3 * bn.eval()(other))


def test_starts_as_the_identity_with_the_seeds_names() -> None:
    m = AdaptiveBatchNorm2d(5)
    assert (m.a.item(), m.b.item()) == (1.0, 0.0)
    assert set(m.state_dict()) == {"a", "b", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    assert set(AdaptiveBatchNorm2d(5, affine=True).state_dict()) >= {"bn.weight", "bn.bias"}


def test_a_conditional_layers_momentum_reaches_the_inner_batch_norm() -> None:
    layer = CBN(5, num_classes=2, norm="adaptive_batch", momentum=0.3)
    assert layer.param_free_norm.bn.momentum == 0.3
