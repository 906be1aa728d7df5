"""Every condnorm layer as a TorchScript trace and a ``torch.export`` program, at new sizes."""

from __future__ import annotations

import pytest
import torch

from condnorm.adacon import _dynamic_conv, _dynamic_conv_unfolded
from models.app.export.verify import parity, resized_inputs
from tests.condnorm.layer_cases import CASES, IDS, LayerCase
from tests.models.app.export_cases import layer_case_spec

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


@pytest.mark.parametrize("fmt", ["torchscript", "export"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_program_matches_eager_at_other_sizes(case: LayerCase, fmt: str) -> None:
    assert parity(layer_case_spec(case), fmt) <= 1e-4


def test_resized_inputs_change_every_dynamic_dimension_consistently() -> None:
    case = next(c for c in CASES if c.name == "RAIN")
    spec = layer_case_spec(case)
    new = dict(zip(spec.input_names, resized_inputs(spec)))
    old = dict(zip(spec.input_names, spec.inputs))
    assert new["x"].shape[0] == old["x"].shape[0] + 1
    assert new["x"].shape[2:] != old["x"].shape[2:]
    assert new["noise"].shape[2:] == new["x"].shape[2:]  # tied to x's size
    assert new["segmap"].shape[2:] != new["x"].shape[2:]  # its own size
    assert new["segmap"].sum(1).eq(1).all()  # one-hot stays one-hot


@pytest.mark.parametrize(("groups", "k"), [(2, 3), (8, 1), (1, 5)])
def test_adacon_onnx_form_equals_the_batched_conv(groups: int, k: int) -> None:
    g = torch.Generator().manual_seed(groups + k)
    n, c = 3, 8
    x = torch.randn(n, c, 7, 9, generator=g, dtype=torch.float64)
    depthwise = torch.randn(n, c, k, k, generator=g, dtype=torch.float64)
    pointwise = torch.randn(n, c, c // groups, generator=g, dtype=torch.float64)
    bias = torch.randn(n, c, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_dynamic_conv_unfolded(x, depthwise, pointwise, bias, groups),
                               _dynamic_conv(x, depthwise, pointwise, bias, groups), rtol=1e-12, atol=1e-12)
