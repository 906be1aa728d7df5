"""Every condnorm layer exported to ONNX with both exporters, run by onnxruntime at new sizes.

Each export is checked on its example inputs and on inputs whose batch and spatial sizes all
changed (``models.app.export.verify.resized_inputs``), against eager PyTorch: max abs diff ≤ 1e-4.
"""

from __future__ import annotations

import onnx
import pytest

from models.app.export.formats import onnx_bytes
from models.app.export.verify import parity
from tests.condnorm.layer_cases import CASES, IDS, LayerCase
from tests.models.app.export_cases import layer_case_spec

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_onnx_dynamo_matches_eager_at_other_sizes(case: LayerCase) -> None:
    assert parity(layer_case_spec(case), "onnx", dynamo=True) <= 1e-4


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_onnx_tracing_exporter_matches_eager_at_other_sizes(case: LayerCase) -> None:
    assert parity(layer_case_spec(case), "onnx", dynamo=False) <= 1e-4


def test_onnx_inputs_are_named_and_dynamic() -> None:
    case = next(c for c in CASES if c.name == "SPADE")
    model = onnx.load_from_string(onnx_bytes(layer_case_spec(case)))
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input}
    assert dims == {"x": ["N", 8, "H", "W"], "segmap": ["N", 5, "segmap_H", "segmap_W"]}
    assert {p.key for p in model.metadata_props} == {"condnorm"}
