"""AdaCoN style transfer, and the split form with precomputed style statistics."""

from __future__ import annotations

import pytest
import torch

from models.adain import StyleTransfer
from models.app.export.graphs import StyleCodeGraph, StyleTransferFromCodeGraph
from models.app.export.verify import parity
from tests.models.app.export_cases import STYLE_SPECS, perturbed_

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


def test_adacon_network_matches_eager_at_other_batch_and_sizes() -> None:
    # dynamo only here: the layer tests cover AdaCoN with the other exporters and formats
    assert parity(STYLE_SPECS["StyleTransfer-adacon"](), "onnx", dynamo=True) <= 1e-4


def test_style_code_graphs_export() -> None:
    assert parity(STYLE_SPECS["StyleTransfer-adain-from-code"](), "onnx", dynamo=False) <= 1e-4
    assert parity(STYLE_SPECS["StyleTransfer-adain-code"](), "onnx", dynamo=False) <= 1e-4


@pytest.mark.parametrize("modulation", ["adain", "adacon"])
def test_split_form_equals_transfer_and_mixing_codes_interpolates(modulation: str) -> None:
    kw = {"style_dim": 8, "style_hidden": 16, "adacon_groups": 64} if modulation == "adacon" else {}
    net = perturbed_(StyleTransfer(modulation=modulation, **kw), gain=1.0).eval()
    coder, stylise = StyleCodeGraph(net), StyleTransferFromCodeGraph(net)
    content, s1, s2 = torch.rand(1, 3, 24, 32), torch.rand(1, 3, 32, 24), torch.rand(1, 3, 16, 40)
    alpha = torch.tensor(0.7)
    with torch.no_grad():
        c1, c2 = coder(s1), coder(s2)
        torch.testing.assert_close(stylise(content, *c1, alpha).clamp(0, 1),
                                   net.transfer(content, s1, alpha=0.7), rtol=0, atol=1e-6)
        if modulation == "adain":  # AdaIN is affine in the statistics: mixed codes = mixed targets
            mixed = [0.3 * a + 0.7 * b for a, b in zip(c1, c2)]
            torch.testing.assert_close(stylise(content, *mixed, alpha).clamp(0, 1),
                                       net.transfer(content, [s1, s2], alpha=0.7, style_weights=[0.3, 0.7]),
                                       rtol=0, atol=1e-5)
