"""The RAIN (SEAN) generator exported with its noise maps as inputs, and its style encoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import infer
from models.app.checkpoint import load_generator
from models.app.export.architecture import load_exported_safetensors
from models.app.export.runtime import OnnxRainGenerator, OnnxSession
from models.app.export.verify import parity
from tests.condnorm.reference import onehot_of
from tests.models.app.export_cases import GENERATOR_SPECS, rain_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


@pytest.mark.parametrize(("fmt", "dynamo"), [("onnx", True), ("onnx", False), ("torchscript", True)],
                         ids=["onnx-dynamo", "onnx-tracing", "torchscript"])
def test_rain_generator_with_explicit_noise_matches_eager(fmt: str, dynamo: bool) -> None:
    spec = GENERATOR_SPECS["SEANGenerator"]()
    assert spec.input_names[:3] == ("segmap", "style_codes", "noise_0")
    assert parity(spec, fmt, dynamo=dynamo) <= 1e-4


def test_rain_style_encoder_matches_eager() -> None:
    assert parity(GENERATOR_SPECS["SEANGenerator-encoder"](), "onnx", dynamo=False) <= 1e-4


def test_command_line_export_reproduces_seeded_noise_and_codes(tiny_trainer: Callable[..., pl.Trainer],
                                                               tmp_path: Path) -> None:
    ckpt = rain_checkpoint(tiny_trainer, tmp_path, num_train=4)
    base = ["export", "--checkpoint", str(ckpt), "--task", "rain"]
    assert infer.main([*base, "--format", "onnx", "--onnx-exporter", "tracing", "--out",
                       str(tmp_path / "g.onnx")]) == 0
    assert infer.main([*base, "--format", "onnx", "--part", "encoder", "--onnx-exporter", "tracing", "--out",
                       str(tmp_path / "e.onnx")]) == 0
    assert infer.main([*base, "--format", "safetensors", "--out", str(tmp_path / "g.safetensors")]) == 0
    generator, _ = load_generator(ckpt)
    ids = torch.randint(generator.semantic_nc, (3, 32, 32))
    seg = onehot_of(ids, generator.semantic_nc)
    image = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        codes = generator.encode(image, seg)
        expected = generator(seg, style_codes=codes, noise=torch.Generator().manual_seed(4))
        from_safetensors = load_exported_safetensors(tmp_path / "g.safetensors")(
            seg, style_codes=codes, noise=torch.Generator().manual_seed(4))
    onnx_codes = OnnxSession(tmp_path / "e.onnx")(image, seg)[0]
    torch.testing.assert_close(onnx_codes, codes, rtol=0, atol=1e-4)
    got = OnnxRainGenerator(tmp_path / "g.onnx")(seg, style_codes=onnx_codes,
                                                 noise=torch.Generator().manual_seed(4))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(from_safetensors, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"holds a RAIN \(SEAN\) generator: export it with --task rain"):
        infer.main(["export", "--checkpoint", str(ckpt), "--task", "spade", "--format", "onnx", "--out",
                    str(tmp_path / "x.onnx")])
