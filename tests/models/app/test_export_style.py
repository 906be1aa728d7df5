"""The AdaIN style-transfer network exported, and run like ``StyleTransfer.transfer``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.adain import StyleTransfer
from models.app.export.formats import export_onnx
from models.app.export.graphs import StyleTransferGraph, style_transfer_spec
from models.app.export.runtime import OnnxGenerator, OnnxStyleTransfer
from models.app.export.verify import parity
from tests.models.app.export_cases import FORMAT_IDS, FORMATS, STYLE_SPECS, perturbed_

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


@pytest.mark.parametrize(("fmt", "dynamo"), FORMATS, ids=FORMAT_IDS)
def test_adain_network_matches_eager_at_other_batch_and_sizes(fmt: str, dynamo: bool) -> None:
    assert parity(STYLE_SPECS["StyleTransfer-adain"](), fmt, dynamo=dynamo) <= 1e-4


def test_graph_equals_transfer_including_padding_and_alpha() -> None:
    net = perturbed_(StyleTransfer(), gain=1.0).eval()
    content, style = torch.rand(2, 3, 37, 29), torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        graph = StyleTransferGraph(net)(content, style, torch.tensor(0.6)).clamp(0, 1)
        expected = net.transfer(content, style, alpha=0.6)
    torch.testing.assert_close(graph, expected, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[StyleTransfer, Path]:
    net = perturbed_(StyleTransfer(), gain=1.0).eval()
    path = tmp_path_factory.mktemp("adain") / "adain.onnx"
    export_onnx(style_transfer_spec(net), path, dynamo=False)  # the fast exporter; the CLI test uses dynamo
    return net, path


@pytest.mark.parametrize("preserve_color", [False, "coral", "luminance"])
def test_runner_transfer_equals_pytorch_transfer(exported, preserve_color) -> None:
    net, path = exported
    runner = OnnxStyleTransfer(path, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 30, 44, generator=g), torch.rand(1, 3, 36, 20, generator=g)
    with torch.no_grad():
        expected = net.transfer(content, style, alpha=0.8, preserve_color=preserve_color)
    got = runner.transfer(content, [style], alpha=0.8, preserve_color=preserve_color)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_runner_refuses_what_one_graph_cannot_do(exported) -> None:
    runner = OnnxStyleTransfer(exported[1], providers=["CPUExecutionProvider"])
    content, style = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="one style per content"):
        runner.transfer(content, [style, style], style_weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="alpha must be in"):
        runner.transfer(content, style, alpha=1.5)
    with pytest.raises(ValueError, match="exported for task 'adain', expected spade"):
        OnnxGenerator(exported[1])
