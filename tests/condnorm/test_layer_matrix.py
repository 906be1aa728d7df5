"""Every layer in ``layer_cases.CASES`` under compile, bf16 autocast, channels_last and TorchScript."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.condnorm.layer_cases import CASES, IDS, LayerCase


def _eval_pair(case: LayerCase):
    torch.manual_seed(0)
    layer = case.build().eval()
    inputs = case.inputs()
    with torch.no_grad():
        expected = layer(*inputs)
    return layer, inputs, expected


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compile_fullgraph(case: LayerCase) -> None:
    layer, inputs, expected = _eval_pair(case)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        out = compiled(*inputs)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bf16_autocast(case: LayerCase) -> None:
    layer, inputs, expected = _eval_pair(case)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(*inputs)
    assert out.shape == expected.shape
    torch.testing.assert_close(out.float(), expected, atol=case.bf16_atol, rtol=0.05)


@pytest.mark.parametrize("case", [c for c in CASES if c.channels_last], ids=lambda c: c.name)
def test_channels_last(case: LayerCase) -> None:
    layer, inputs, expected = _eval_pair(case)
    layer_cl = copy.deepcopy(layer).to(memory_format=torch.channels_last)
    cl_inputs = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
                      for t in inputs)
    with torch.no_grad():
        out = layer_cl(*cl_inputs)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torchscript_trace(case: LayerCase) -> None:
    layer, inputs, expected = _eval_pair(case)
    traced = torch.jit.trace(layer, inputs, check_trace=False)
    with torch.no_grad():
        out = traced(*inputs)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # A traced program must not have frozen the batch size.
    doubled = tuple(torch.cat([t, t]) for t in inputs)
    with torch.no_grad():
        torch.testing.assert_close(traced(*doubled)[:1], layer(*doubled)[:1], atol=1e-5, rtol=1e-5)
