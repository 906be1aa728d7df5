"""Filter Response Normalization + TLU against the paper's formula."""

from __future__ import annotations

import torch

from condnorm.norms import FilterResponseNorm2d


def _x() -> torch.Tensor:
    return torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(0)) * 2 + 0.5


def test_frn_divides_by_the_mean_square_and_thresholds_at_tau() -> None:
    frn = FilterResponseNorm2d(4, eps=1e-6)
    with torch.no_grad():
        frn.tau.copy_(torch.tensor([-0.5, 0.0, 0.3, 1.0]))
    x = _x()
    nu2 = (x ** 2).mean(dim=(2, 3), keepdim=True)
    expected = torch.max(x / torch.sqrt(nu2 + 1e-6), frn.tau.view(1, 4, 1, 1))
    torch.testing.assert_close(frn(x), expected)


def test_learned_eps_is_its_absolute_value_plus_the_floor() -> None:
    frn = FilterResponseNorm2d(4, eps=1e-6, learnable_eps=True, tlu=False)
    with torch.no_grad():
        frn.eps_learned.fill_(-0.5)
    x = _x()
    expected = x / torch.sqrt((x ** 2).mean(dim=(2, 3), keepdim=True) + 0.5 + 1e-6)
    torch.testing.assert_close(frn(x), expected)
    assert {n for n, _ in frn.named_parameters()} == {"eps_learned"}


def test_no_mean_is_subtracted_and_no_batch_dependence() -> None:
    x = _x()
    frn = FilterResponseNorm2d(4, tlu=False)
    torch.testing.assert_close(frn(x)[:1], frn(x[:1]))
    assert frn(x + 10).mean() > 0.9
