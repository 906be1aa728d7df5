"""SPADE and CLADE generators in every program format; the batch is dynamic, the size fixed."""

from __future__ import annotations

import onnx
import pytest

from models.export.formats import onnx_bytes
from models.export.verify import parity
from tests.export_cases import GENERATOR_SPECS

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14
FORMATS = [("onnx", True), ("onnx", False), ("torchscript", True), ("export", True)]
IDS = ["onnx-dynamo", "onnx-tracing", "torchscript", "export"]


@pytest.mark.parametrize(("fmt", "dynamo"), FORMATS, ids=IDS)
@pytest.mark.parametrize("name", ["SPADEGenerator", "CLADEGenerator"])
def test_generator_matches_eager_at_another_batch(name: str, fmt: str, dynamo: bool) -> None:
    assert parity(GENERATOR_SPECS[name](), fmt, dynamo=dynamo) <= 1e-4


def test_generator_onnx_records_what_the_runtime_needs() -> None:
    spec = GENERATOR_SPECS["SPADEGenerator"]()
    model = onnx.load_from_string(onnx_bytes(spec, dynamo=False))
    (segmap,) = model.graph.input
    assert [d.dim_param or d.dim_value for d in segmap.type.tensor_type.shape.dim] == ["N", 6, 32, 64]
    meta = {p.key: p.value for p in model.metadata_props}["condnorm"]
    assert '"output_size": [32, 64]' in meta and '"use_vae": false' in meta and '"task": "spade"' in meta
