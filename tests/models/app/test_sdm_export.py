"""The SDM denoiser exported to ONNX (dynamic batch) and the Python DDIM loop around onnxruntime, against eager."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import infer
from models.app.checkpoint import load_generator
from models.app.export.graphs import sdm_denoiser_spec
from models.app.export.runtime import OnnxDenoiser
from models.app.export.verify import parity
from models.app.mask_to_image import MaskToImage
from models.sdm import DDIMSampler
from tests.models.app.sdm_models import sdm_checkpoint

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sdm_export")
    ckpt = sdm_checkpoint(root)
    onnx = root / "sdm.onnx"
    status = infer.cli(["export", "--checkpoint", str(ckpt), "--task", "sdm", "--format", "onnx", "--out", str(onnx)])
    assert status == 0
    return {"ckpt": ckpt, "onnx": onnx}


def test_denoiser_parity_with_eager_at_two_batch_sizes(exported: dict[str, Path]) -> None:
    sampler, _ = load_generator(exported["ckpt"])
    onnx = OnnxDenoiser(exported["onnx"])
    gen = torch.Generator().manual_seed(0)
    for batch in (1, 5):  # the batch is dynamic
        x, mask = torch.randn(batch, 3, 16, 16, generator=gen), torch.rand(batch, 7, 16, 16, generator=gen)
        t = torch.randint(0, 100, (batch,), generator=gen).float()
        with torch.no_grad():
            expected = sampler.denoiser(x, t, mask)
        assert (onnx(x, t, mask) - expected).abs().max().item() <= 1e-4


def test_tracing_exporter_parity_too(exported: dict[str, Path]) -> None:
    sampler, _ = load_generator(exported["ckpt"])
    assert parity(sdm_denoiser_spec(sampler), "onnx", dynamo=False) <= 1e-4


def test_onnx_sampling_gives_the_eager_sample_for_the_same_seed(exported: dict[str, Path]) -> None:
    eager, onnx = MaskToImage.load(exported["ckpt"]), MaskToImage.load(exported["onnx"])
    assert isinstance(onnx.generator, DDIMSampler) and onnx.layout == eager.layout
    assert (onnx.generator.steps, onnx.generator.guidance) == (3, 1.5)  # the defaults recorded at export
    ids = [torch.randint(0, 6, (16, 16), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    for a, b in zip(eager.generate_ids(ids, seed=7), onnx.generate_ids(ids, seed=7)):
        assert (a - b).abs().max().item() <= 1e-3


def test_export_refuses_the_wrong_task_and_safetensors(exported: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in ((["--task", "spade", "--format", "onnx"], "export it with --task sdm"),
                          (["--task", "sdm", "--format", "safetensors"], "use --format onnx")):
        status = infer.cli(["export", "--checkpoint", str(exported["ckpt"]), *args, "--out", str(tmp_path / "x")])
        assert status == 2 and message in capsys.readouterr().err


def test_an_exported_file_records_the_sampling_setup(exported: dict[str, Path]) -> None:
    meta = OnnxDenoiser(exported["onnx"]).metadata
    assert meta["task"] == "sdm" and meta["schedule"] == "linear" and meta["timesteps"] == 100
    assert meta["prediction"] == "eps" and meta["output_size"] == [16, 16] and meta["semantic_nc"] == 7
    assert meta["label_layout"]["label_nc"] == 6 and meta["source"] == "sdm.ckpt"
