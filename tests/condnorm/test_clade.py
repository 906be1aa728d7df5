"""CLADE: per-class lookup formula, soft maps, id maps, plain γ, gradients, errors, state dict."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from condnorm import CLADE, make_norm
from condnorm.norm import PARAMETER_FREE_KINDS
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import batch_norm_train, ids_map, nearest, onehot_of


def lookup(table: Tensor, ids: Tensor) -> Tensor:
    """(L, C) table indexed per pixel by (N, H, W) ids -> (N, C, H, W)."""
    return table[ids].permute(0, 3, 1, 2)


def blend(table: Tensor, seg: Tensor) -> Tensor:
    """Σ_k seg[:, k] * table[k], one class at a time."""
    return sum(seg[:, k : k + 1] * table[k].view(1, -1, 1, 1) for k in range(table.shape[0]))


@pytest.mark.parametrize("plain_gamma", [False, True])
def test_formula_lookup_from_ids(plain_gamma: bool, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CLADE(6, label_nc=5, plain_gamma=plain_gamma, device=device, dtype=dtype))
    x, ids = torch.randn(3, 6, 8, 8, device=device, dtype=dtype), ids_map(3, 5, 16, 16).to(device)
    small = nearest(ids, 8, 8)
    gamma, beta = lookup(layer.weight, small), lookup(layer.bias, small)
    scale = gamma if plain_gamma else 1 + gamma
    expected = batch_norm_train(x) * scale + beta
    torch.testing.assert_close(layer(x, ids), expected, atol=1e-5, rtol=1e-5)


def test_onehot_equals_ids_and_soft_blends(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CLADE(4, label_nc=3, device=device, dtype=dtype))
    x, ids = torch.randn(2, 4, 8, 8, device=device, dtype=dtype), ids_map(2, 3, 4, 4).to(device)
    onehot = onehot_of(ids, 3).to(dtype)
    torch.testing.assert_close(layer(x, onehot), layer(x, ids), atol=1e-6, rtol=1e-6)
    soft = torch.softmax(torch.randn(2, 3, 8, 8, device=device, dtype=dtype), dim=1)
    expected = batch_norm_train(x) * (1 + blend(layer.weight, soft)) + blend(layer.bias, soft)
    torch.testing.assert_close(layer(x, soft), expected, atol=1e-5, rtol=1e-5)


def test_gradcheck_input_and_soft_segmap() -> None:
    layer = randomize_(CLADE(3, label_nc=4)).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    seg = torch.rand(2, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, seg))


def test_gradcheck_tables_with_ids() -> None:
    layer = randomize_(CLADE(3, label_nc=4, plain_gamma=True)).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    ids = ids_map(2, 4, 8, 8)

    def f(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x, ids))

    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (x, w, b))


@pytest.mark.parametrize("kind", PARAMETER_FREE_KINDS)
def test_identity_at_init(kind: str, device: torch.device, dtype: torch.dtype) -> None:
    layer = CLADE(8, label_nc=3, norm=kind, device=device, dtype=dtype)
    x = torch.randn(2, 8, 6, 6, device=device, dtype=dtype)
    out = layer(x, ids_map(2, 3, 6, 6).to(device))
    assert out.shape == x.shape
    torch.testing.assert_close(out, make_norm(kind, 8).to(device, dtype)(x))


def test_plain_gamma_init_is_the_papers() -> None:
    layer = CLADE(16, label_nc=10, plain_gamma=True)
    assert layer.weight.shape == layer.bias.shape == (10, 16)
    assert 0 <= layer.weight.min() and layer.weight.max() < 1 and layer.weight.std() > 0.1
    assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize(
    ("x", "seg", "err", "match"),
    [
        (torch.randn(4, 8, 8), ids_map(2, 3, 8, 8), ValueError, r"CLADE x: expected a 4-d tensor"),
        (torch.randn(2, 5, 8, 8), ids_map(2, 3, 8, 8), ValueError, r"CLADE x: .*'C' is 5, expected 4"),
        (torch.randn(2, 4, 8, 8), ids_map(3, 3, 8, 8), ValueError, r"CLADE segmap \(ids\): .*'N' is 3"),
        (torch.randn(2, 4, 8, 8), torch.rand(3, 3, 8, 8), ValueError, r"CLADE segmap: .*'N' is 3"),
        (torch.randn(2, 4, 8, 8), torch.rand(2, 5, 8, 8), ValueError, r"CLADE segmap: .*'L' is 5, expected"),
        (torch.randn(2, 4, 8, 8), ids_map(2, 7, 8, 8, seed=3), ValueError, r"ids must be in \[0, 3\)"),
        (torch.randn(2, 4, 8, 8), torch.rand(2, 8, 8), TypeError, r"expected an integer tensor"),
        (torch.randn(2, 4, 8, 8), torch.rand(2, 3, 1, 8, 8), ValueError, r"CLADE segmap: expected a 4-d"),
    ],
)
def test_errors(x: Tensor, seg: Tensor, err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        CLADE(4, label_nc=3)(x, seg)


def test_state_dict_round_trip() -> None:
    layer = randomize_(CLADE(4, label_nc=3, plain_gamma=True))
    x, ids = torch.randn(2, 4, 8, 8), ids_map(2, 3, 8, 8)
    layer(x, ids)
    assert set(layer.state_dict()) == {"weight", "bias", "param_free_norm.running_mean",
                                       "param_free_norm.running_var", "param_free_norm.num_batches_tracked"}
    clone = CLADE(4, label_nc=3, plain_gamma=True)
    clone.load_state_dict(layer.state_dict(), strict=True)
    layer.eval()
    clone.eval()
    torch.testing.assert_close(clone(x, ids), layer(x, ids), rtol=0, atol=0)
