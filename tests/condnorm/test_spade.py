"""SPADE: formula, gradients, identity at init, errors, official state dicts."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import Tensor

from condnorm import SPADE, make_norm
from condnorm.norm import PARAMETER_FREE_KINDS
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import batch_norm_eval, batch_norm_train, onehot
from tests.condnorm.reference import spade as spade_reference


@pytest.mark.parametrize("seg_size", [16, 4, 8])
def test_formula_train_mode(seg_size: int, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(SPADE(6, label_nc=4, hidden=8, device=device, dtype=dtype))
    x = torch.randn(3, 6, 8, 8, device=device, dtype=dtype)
    seg = onehot(3, 4, seg_size, seg_size).to(device, dtype)
    expected = spade_reference(x, seg, layer.state_dict(), batch_norm_train(x))
    torch.testing.assert_close(layer(x, seg), expected, atol=1e-5, rtol=1e-5)


def test_formula_eval_mode_uses_running_statistics(device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(SPADE(4, label_nc=3, hidden=8, kernel_size=5, device=device, dtype=dtype))
    # one training step moves the stats
    layer(torch.randn(2, 4, 8, 8, device=device, dtype=dtype) * 2 + 1, onehot(2, 3, 8, 8).to(device, dtype))
    layer.eval()
    x, seg = torch.randn(2, 4, 8, 8, device=device, dtype=dtype), onehot(2, 3, 16, 16, seed=1).to(device, dtype)
    normalized = batch_norm_eval(x, layer.param_free_norm.running_mean, layer.param_free_norm.running_var)
    expected = spade_reference(x, seg, layer.state_dict(), normalized)
    torch.testing.assert_close(layer(x, seg), expected, atol=1e-5, rtol=1e-5)


def test_gradcheck_input_and_segmap() -> None:
    layer = randomize_(SPADE(3, label_nc=2, hidden=4)).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    seg = torch.rand(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, seg))


@pytest.mark.parametrize("kind", PARAMETER_FREE_KINDS)
def test_identity_at_init_for_every_norm(kind: str, device: torch.device, dtype: torch.dtype) -> None:
    layer = SPADE(8, label_nc=3, norm=kind, hidden=8, device=device, dtype=dtype)
    x = torch.randn(2, 8, 6, 6, device=device, dtype=dtype)
    out = layer(x, onehot(2, 3, 12, 12).to(device, dtype))
    assert out.shape == x.shape
    torch.testing.assert_close(out, make_norm(kind, 8).to(device, dtype)(x))


@pytest.mark.parametrize("kind", PARAMETER_FREE_KINDS)
def test_every_norm_modulates(kind: str, device: torch.device, dtype: torch.dtype) -> None:
    layer = randomize_(SPADE(8, label_nc=3, norm=kind, hidden=8, device=device, dtype=dtype))
    x, seg = torch.randn(2, 8, 6, 6, device=device, dtype=dtype), onehot(2, 3, 6, 6).to(device, dtype)
    expected = spade_reference(x, seg, layer.state_dict(), make_norm(kind, 8).to(device, dtype)(x))
    torch.testing.assert_close(layer(x, seg), expected, atol=1e-5, rtol=1e-5)


def test_gamma_beta_shapes() -> None:
    gamma, beta = SPADE(5, label_nc=3, hidden=8).gamma_beta(onehot(2, 3, 4, 4), (8, 6))
    assert gamma.shape == beta.shape == (2, 5, 8, 6)


@pytest.mark.parametrize(
    ("x", "seg", "match"),
    [
        (torch.randn(4, 8, 8), onehot(2, 3, 8, 8), r"SPADE x: expected a 4-d tensor"),
        (torch.randn(2, 5, 8, 8), onehot(2, 3, 8, 8), r"SPADE x: .*dimension 'C' is 5, expected 4"),
        (torch.randn(2, 4, 8, 8), onehot(3, 3, 8, 8), r"SPADE segmap: .*dimension 'N' is 3, expected 2"),
        (torch.randn(2, 4, 8, 8), onehot(2, 5, 8, 8), r"SPADE segmap: .*dimension 'L' is 5, expected 3"),
        (torch.randn(2, 4, 8, 8), torch.rand(2, 8, 8), r"SPADE segmap: expected a 4-d tensor"),
    ],
)
def test_errors(x: Tensor, seg: Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SPADE(4, label_nc=3, hidden=8)(x, seg)


def test_even_kernel_rejected() -> None:
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        SPADE(4, label_nc=3, kernel_size=4)


def test_state_dict_round_trip() -> None:
    layer = randomize_(SPADE(4, label_nc=3, hidden=8))
    x, seg = torch.randn(2, 4, 8, 8), onehot(2, 3, 8, 8)
    layer(x, seg)  # non-trivial running statistics
    clone = SPADE(4, label_nc=3, hidden=8)
    clone.load_state_dict(layer.state_dict(), strict=True)
    layer.eval()
    clone.eval()
    torch.testing.assert_close(clone(x, seg), layer(x, seg), rtol=0, atol=0)


def test_official_state_dict_loads_strict() -> None:
    """An official-format dict (keys and shapes of NVlabs/SPADE, hidden 128) loads and computes."""
    c, labels, g = 4, 3, torch.Generator().manual_seed(5)
    sd = OrderedDict(
        [
            ("param_free_norm.running_mean", torch.randn(c, generator=g)),
            ("param_free_norm.running_var", torch.rand(c, generator=g) + 0.5),
            ("param_free_norm.num_batches_tracked", torch.tensor(7)),
            ("mlp_shared.0.weight", torch.randn(128, labels, 3, 3, generator=g) * 0.1),
            ("mlp_shared.0.bias", torch.randn(128, generator=g) * 0.1),
            ("mlp_gamma.weight", torch.randn(c, 128, 3, 3, generator=g) * 0.05),
            ("mlp_gamma.bias", torch.randn(c, generator=g) * 0.1),
            ("mlp_beta.weight", torch.randn(c, 128, 3, 3, generator=g) * 0.05),
            ("mlp_beta.bias", torch.randn(c, generator=g) * 0.1),
        ]
    )
    layer = SPADE(c, label_nc=labels)
    assert set(layer.state_dict()) == set(sd)
    layer.load_state_dict(sd, strict=True)
    layer.eval()
    x, seg = torch.randn(2, c, 8, 8), onehot(2, labels, 16, 16)
    normalized = batch_norm_eval(x, sd["param_free_norm.running_mean"], sd["param_free_norm.running_var"])
    torch.testing.assert_close(layer(x, seg), spade_reference(x, seg, sd, normalized), atol=1e-5, rtol=1e-5)
