"""SPADE and CLADE generators in every program format; the batch is dynamic, the size fixed."""

from __future__ import annotations

import onnx
import pytest
import torch

from condnorm import SemanticMap
from models.app.export.formats import GraphSpec, export_onnx, onnx_bytes
from models.app.export.runtime import OnnxGenerator
from models.app.export.verify import parity, resized_inputs
from tests.condnorm.reference import onehot_of
from tests.models.app.export_cases import FORMAT_IDS, FORMATS, GENERATOR_SPECS, SEMANTIC_NC

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


@pytest.mark.parametrize(("fmt", "dynamo"), FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("name", ["SPADEGenerator", "CLADEGenerator", "SPADEGenerator-edges",
                                  "CLADEGenerator-edges", "OASISGenerator", "OASISGenerator-clade-edges-region"])
def test_generator_matches_eager_at_another_batch(name: str, fmt: str, dynamo: bool) -> None:
    assert parity(GENERATOR_SPECS[name](), fmt, dynamo=dynamo) <= 1e-4


def test_generator_onnx_records_what_the_runtime_needs() -> None:
    spec = GENERATOR_SPECS["SPADEGenerator"]()
    model = onnx.load_from_string(onnx_bytes(spec, dynamo=False))
    (ids,) = model.graph.input
    assert [d.dim_param or d.dim_value for d in ids.type.tensor_type.shape.dim] == ["N", 32, 64]
    meta = {p.key: p.value for p in model.metadata_props}["condnorm"]
    assert '"output_size": [32, 64]' in meta and '"use_vae": false' in meta and '"task": "spade"' in meta


@pytest.fixture(scope="module")
def edges_runner(tmp_path_factory: pytest.TempPathFactory) -> tuple[OnnxGenerator, GraphSpec]:
    spec = GENERATOR_SPECS["CLADEGenerator-edges"]()
    path = export_onnx(spec, tmp_path_factory.mktemp("onnx") / "clade.onnx")
    return OnnxGenerator(path, providers=["CPUExecutionProvider"]), spec


def test_runner_takes_the_one_hot_map_ids_or_a_semantic_map(edges_runner) -> None:
    runner, spec = edges_runner
    ids, edges = spec.inputs
    dense = torch.cat([onehot_of(ids, SEMANTIC_NC - 1), edges], dim=1)
    with torch.no_grad():
        expected = spec.module(ids, edges)
    for segmap in (dense, SemanticMap(ids.int(), edges)):
        assert (runner(segmap) - expected).abs().max() <= 1e-4


def test_runner_refuses_soft_maps_and_wrong_edges(edges_runner) -> None:
    runner, spec = edges_runner
    ids, edges = spec.inputs
    onehot = onehot_of(ids, SEMANTIC_NC - 1)
    with pytest.raises(ValueError, match="hard label maps"):
        runner(torch.cat([onehot * 0.5 + 0.1, edges], dim=1))
    with pytest.raises(ValueError, match="1 edge channel"):
        runner(ids)
    with pytest.raises(ValueError, match="must hold 0 and 1"):
        runner(torch.cat([onehot, edges * 0.5], dim=1))
    with pytest.raises(ValueError, match=r"L=6"):
        runner(onehot)


def test_resized_inputs_keep_edges_binary_and_ids_in_range() -> None:
    spec = GENERATOR_SPECS["CLADEGenerator-edges"]()
    ids, edges = resized_inputs(spec)
    assert ids.shape[0] == edges.shape[0] == spec.inputs[0].shape[0] + 1
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    assert int(ids.min()) >= 0 and int(ids.max()) < SEMANTIC_NC - 1
