"""ConditionalBatchNorm2d and mix_table: formulas per condition kind, gradients, init, errors, state dicts."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from condnorm import CBN, ConditionalBatchNorm2d, make_norm
from condnorm.functional import mix_table
from condnorm.norm import PARAMETER_FREE_KINDS
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import batch_norm_train, instance_norm


def expand(v: Tensor) -> Tensor:
    return v[:, :, None, None]


def test_alias() -> None:
    assert CBN is ConditionalBatchNorm2d


# --- mix_table ------------------------------------------------------------------------------


def test_mix_table_ids_pick_rows_and_weights_blend_them() -> None:
    table = torch.randn(4, 3)
    ids = torch.tensor([2, 0, 2])
    torch.testing.assert_close(mix_table(table, ids), table[[2, 0, 2]], rtol=0, atol=0)
    weights = torch.rand(3, 4)
    expected = torch.stack([sum(weights[n, k] * table[k] for k in range(4)) for n in range(3)])
    torch.testing.assert_close(mix_table(table, weights), expected)
    onehot = torch.eye(4)[ids]
    torch.testing.assert_close(mix_table(table, onehot), table[ids])


@pytest.mark.parametrize(
    ("condition", "error", "match"),
    [
        (torch.tensor([0.0, 1.0]), TypeError, r"c ids: expected an integer tensor"),
        (torch.tensor([0, 4]), ValueError, r"c ids: ids must be in \[0, 4\), found \[4\]"),
        (torch.tensor([-1, 0]), ValueError, r"ids must be in \[0, 4\), found \[-1\]"),
        (torch.zeros(2, 5), ValueError, r"c \(ids \(N,\) or weights \(N, K\)\).*'K' is 5, expected 4"),
        (torch.zeros(2, 4, dtype=torch.long), TypeError, r"c: \(N, K\) class weights must be floating"),
        (torch.zeros(2, 4, 1), ValueError, r"expected a 2-d tensor"),
        (torch.tensor([0, 1, 2]), ValueError, r"c ids: .*'N' is 3, expected 2"),
    ],
)
def test_mix_table_errors(condition: Tensor, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        mix_table(torch.randn(4, 3), condition, batch_size=2, name="c")


# --- formulas -------------------------------------------------------------------------------


def test_formula_class_ids(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CBN(6, num_classes=4, device=device, dtype=dtype))
    x, ids = torch.randn(3, 6, 5, 5, device=device, dtype=dtype), torch.tensor([3, 0, 3], device=device)
    g, b = layer.gamma.weight[ids], layer.beta.weight[ids]
    expected = batch_norm_train(x) * (1 + expand(g)) + expand(b)
    torch.testing.assert_close(layer(x, ids), expected, atol=1e-5, rtol=1e-5)


def test_formula_soft_class_weights_and_onehot_equals_ids(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CBN(6, num_classes=4, plain_gamma=True, device=device, dtype=dtype))
    x, w = torch.randn(3, 6, 5, 5, device=device, dtype=dtype), torch.rand(3, 4, device=device, dtype=dtype)
    g = torch.einsum("nk,kc->nc", w, layer.gamma.weight)
    b = torch.einsum("nk,kc->nc", w, layer.beta.weight)
    torch.testing.assert_close(layer(x, w), batch_norm_train(x) * expand(g) + expand(b), atol=1e-5, rtol=1e-5)
    ids = torch.tensor([1, 2, 1], device=device)
    torch.testing.assert_close(layer(x, torch.eye(4, device=device, dtype=dtype)[ids]), layer(x, ids))


def test_formula_vector_projection(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CBN(6, cond_dim=5, norm="instance", device=device, dtype=dtype))
    x, c = torch.randn(2, 6, 5, 5, device=device, dtype=dtype), torch.randn(2, 5, device=device, dtype=dtype)
    sd = layer.state_dict()
    g = c @ sd["gamma.weight"].T + sd["gamma.bias"]
    b = c @ sd["beta.weight"].T + sd["beta.bias"]
    torch.testing.assert_close(layer(x, c), instance_norm(x) * (1 + expand(g)) + expand(b), atol=1e-5, rtol=1e-5)


def test_spectral_projection_divides_by_the_largest_singular_value(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(CBN(6, cond_dim=5, spectral=True, norm="none", device=device, dtype=dtype))
    x, c = torch.randn(2, 6, 4, 4, device=device, dtype=dtype), torch.randn(2, 5, device=device, dtype=dtype)
    with torch.no_grad():
        for _ in range(50):  # power iterations run in training-mode forwards
            layer(x, c)
    layer.eval()
    raw = {name: layer.state_dict()[f"{name}.parametrizations.weight.original"] for name in ("gamma", "beta")}
    w = {name: v / torch.linalg.matrix_norm(v, ord=2) for name, v in raw.items()}
    g = c @ w["gamma"].T + layer.gamma.bias
    b = c @ w["beta"].T + layer.beta.bias
    torch.testing.assert_close(layer(x, c), x * (1 + expand(g)) + expand(b), atol=1e-4, rtol=1e-4)


def test_spectral_starts_orthogonal_not_at_identity() -> None:
    layer = CBN(4, cond_dim=6, spectral=True)
    w = layer.gamma.parametrizations.weight.original
    torch.testing.assert_close(w @ w.T, torch.eye(4), atol=1e-5, rtol=0)
    assert torch.all(layer.gamma.bias == 0) and torch.all(layer.beta.bias == 0)


def test_momentum_and_eps_reach_the_normalizer() -> None:
    layer = CBN(4, num_classes=3, eps=1e-3, momentum=0.3)
    assert (layer.param_free_norm.eps, layer.param_free_norm.momentum) == (1e-3, 0.3)
    assert CBN(4, num_classes=3, norm="group", eps=1e-3).param_free_norm.eps == 1e-3  # GroupNorm: no momentum


# --- init, gradients ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PARAMETER_FREE_KINDS)
@pytest.mark.parametrize("plain_gamma", [False, True])
def test_identity_at_init(kind: str, plain_gamma: bool, device: torch.device, dtype: torch.dtype) -> None:
    x = torch.randn(3, 8, 4, 4, device=device, dtype=dtype)
    expected = make_norm(kind, 8).to(device, dtype)(x)
    conditions = {"num_classes": torch.tensor([0, 2, 1], device=device),
                  "cond_dim": torch.randn(3, 5, device=device, dtype=dtype)}
    for key, cond in conditions.items():
        layer = CBN(8, **{key: 3 if key == "num_classes" else 5}, norm=kind, plain_gamma=plain_gamma,
                    device=device, dtype=dtype)
        torch.testing.assert_close(layer(x, cond), expected)
    convex = torch.rand(3, 3, device=device, dtype=dtype).softmax(1)
    layer = CBN(8, num_classes=3, norm=kind, plain_gamma=plain_gamma, device=device, dtype=dtype)
    torch.testing.assert_close(layer(x, convex), expected)


def test_gradcheck_input_and_class_weights() -> None:
    layer = randomize_(CBN(3, num_classes=4)).double()
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, w))
    assert torch.autograd.gradcheck(lambda x_: layer(x_, torch.tensor([3, 1])), (x,))


@pytest.mark.parametrize("spectral", [False, True])
def test_gradcheck_input_and_vector(spectral: bool) -> None:
    layer = randomize_(CBN(3, cond_dim=4, spectral=spectral)).double().eval()  # eval: no power iteration
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, c))


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "cond", "error", "match"),
    [
        (torch.randn(2, 4, 4), torch.tensor([0, 1]), ValueError, r"ConditionalBatchNorm2d x: expected a 4-d"),
        (torch.randn(2, 5, 4, 4), torch.tensor([0, 1]), ValueError, r"x: .*'C' is 5, expected 4"),
        (torch.randn(2, 4, 4, 4), torch.tensor([0, 1, 2]), ValueError, r"ids: .*'N' is 3, expected 2"),
        (torch.randn(2, 4, 4, 4), torch.tensor([0, 3]), ValueError, r"ids must be in \[0, 3\), found \[3\]"),
        (torch.randn(2, 4, 4, 4), torch.tensor([0.0, 1.0]), TypeError, r"expected an integer tensor"),
        (torch.randn(2, 4, 4, 4), torch.rand(2, 5), ValueError, r"'K' is 5, expected 3"),
        (torch.randn(2, 4, 4, 4), torch.rand(3, 3), ValueError, r"'N' is 3, expected 2"),
    ],
)
def test_errors_class_mode(x: Tensor, cond: Tensor, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        CBN(4, num_classes=3)(x, cond)


@pytest.mark.parametrize(
    ("cond", "error", "match"),
    [
        (torch.tensor([0, 1]), ValueError, r"condition vector: expected a 2-d tensor of shape \(N=2, D=5\)"),
        (torch.randn(2, 6), ValueError, r"condition vector: .*'D' is 6, expected 5"),
        (torch.randn(3, 5), ValueError, r"condition vector: .*'N' is 3, expected 2"),
        (torch.zeros(2, 5, dtype=torch.long), TypeError, r"condition vectors must be floating point"),
    ],
)
def test_errors_vector_mode(cond: Tensor, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        CBN(4, cond_dim=5)(torch.randn(2, 4, 4, 4), cond)


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="exactly one of num_classes="):
        CBN(4)
    with pytest.raises(ValueError, match="exactly one of num_classes="):
        CBN(4, num_classes=3, cond_dim=5)
    with pytest.raises(ValueError, match="class tables are not spectrally normalised"):
        CBN(4, num_classes=3, spectral=True)


# --- state dicts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "cond"),
    [({"num_classes": 3}, torch.tensor([2, 0])), ({"cond_dim": 5, "spectral": True}, torch.randn(2, 5))],
)
def test_state_dict_round_trip(kwargs: dict, cond: Tensor) -> None:
    layer = randomize_(CBN(4, **kwargs))
    x = torch.randn(2, 4, 4, 4)
    layer(x, cond)  # moves running statistics (and SN's u, v)
    clone = CBN(4, **kwargs)
    clone.load_state_dict(layer.state_dict(), strict=True)
    layer.eval()
    clone.eval()
    torch.testing.assert_close(clone(x, cond), layer(x, cond), rtol=0, atol=0)


def test_state_dict_keys() -> None:
    keys = set(CBN(4, num_classes=3).state_dict())
    assert {"gamma.weight", "beta.weight", "param_free_norm.running_mean"} <= keys
    assert "gamma.parametrizations.weight.original" in CBN(4, cond_dim=2, spectral=True).state_dict()
