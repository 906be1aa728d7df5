"""``infer.py export`` from a Lightning checkpoint, then ``infer.py spade --onnx``: the same images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

import infer
from models.app.checkpoint import load_generator
from models.app.export.architecture import load_exported_safetensors
from models.app.export.formats import load_torchscript
from models.app.export.runtime import OnnxGenerator
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.mask_to_image import MaskToImageModule
from tests.condnorm.reference import onehot_of
from tests.models.data.data_files import read_images, write_ids

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_trainer: Callable[..., pl.Trainer]) -> Path:
    """A tiny SPADE trained 2 steps, with an EMA generator that differs from the live one."""
    root = tmp_path_factory.mktemp("run")
    dm = SemanticDataModule(dataset_mode="shapes", crop_size=32, num_train=4, num_val=2, batch_size=2,
                            num_workers=0, no_instance=True)
    model = MaskToImageModule(ngf=8, ndf=8, num_D=1, n_layers_D=2, norm_G="syncbatch", lambda_vgg=0.0,
                              lpips=False, ema_decay=0.5, ema_warmup=False)
    trainer = tiny_trainer(root, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    ckpt = root / "run.ckpt"
    trainer.save_checkpoint(ckpt)
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        ids = torch.randint(dm.layout.label_nc, (24 + i, 40), generator=gen)
        write_ids(root / "labels" / f"mask_{i}.png", ids.numpy())
    return ckpt


def test_round_trip_checkpoint_to_onnx_gives_the_same_images(checkpoint: Path, tmp_path: Path) -> None:
    onnx_path = tmp_path / "spade.onnx"
    assert infer.main(["export", "--checkpoint", str(checkpoint), "--task", "spade", "--format", "onnx",
                       "--out", str(onnx_path)]) == 0
    labels = str(checkpoint.parent / "labels")
    assert infer.main(["spade", "--checkpoint", str(checkpoint), "--labels", labels, "--out",
                       str(tmp_path / "torch"), "--batch-size", "2"]) == 0
    assert infer.main(["spade", "--onnx", str(onnx_path), "--labels", labels, "--out",
                       str(tmp_path / "onnx"), "--batch-size", "3"]) == 0  # another batch than exported
    eager, exported = read_images(tmp_path / "torch"), read_images(tmp_path / "onnx")
    assert sorted(exported) == ["mask_0.png", "mask_1.png", "mask_2.png"]
    for name, image in eager.items():
        assert image.shape == exported[name].shape == (24 + int(name[5]), 40, 3)
        assert np.abs(image - exported[name]).max() <= 1  # 8-bit rounding of a ≤1e-4 difference


def test_export_takes_the_ema_generator_and_records_the_layout(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.onnx"
    infer.main(["export", "--checkpoint", str(checkpoint), "--task", "spade", "--format", "onnx",
                "--onnx-exporter", "tracing", "--out", str(out)])
    runner = OnnxGenerator(out, providers=["CPUExecutionProvider"])
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    ema, _ = load_generator(checkpoint)
    live, _ = load_generator(checkpoint)
    live.load_state_dict({k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")})
    seg = onehot_of(torch.randint(ema.semantic_nc, (2, 32, 32)), ema.semantic_nc)
    with torch.no_grad():
        got, want, other = runner(seg), ema(seg), live.eval()(seg)
    assert (want - other).abs().max() > 1e-3  # the two generators differ
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert runner.layout.label_nc == 6 and runner.output_size == (32, 32) and not runner.use_vae


@pytest.mark.parametrize("fmt", ["torchscript", "safetensors"])
def test_other_formats_from_the_command_line(checkpoint: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("g.pt" if fmt == "torchscript" else "g.safetensors")
    assert infer.main(["export", "--checkpoint", str(checkpoint), "--task", "spade", "--format", fmt,
                       "--out", str(out)]) == 0
    generator, layout = load_generator(checkpoint)
    assert not layout.use_instance  # the graph takes ids only
    seg = torch.randint(generator.semantic_nc, (2, 32, 32))  # the TorchScript graph's input: class ids
    if fmt == "torchscript":
        module, meta = load_torchscript(out)
        assert meta["task"] == "spade" and meta["label_layout"]["label_nc"] == 6
    else:
        module = load_exported_safetensors(out)
        assert out.with_suffix(".json").is_file()
    with torch.no_grad():
        torch.testing.assert_close(module(seg), generator(seg), rtol=0, atol=1e-5)


def test_checkpoint_and_onnx_are_mutually_exclusive(checkpoint: Path, tmp_path: Path) -> None:
    base = ["spade", "--labels", str(checkpoint.parent / "labels"), "--out", str(tmp_path)]
    with pytest.raises(ValueError, match="give exactly one of --checkpoint"):
        infer.main([*base, "--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "x.onnx")])
    with pytest.raises(ValueError, match="give exactly one of --checkpoint"):
        infer.main(base)
    with pytest.raises(FileNotFoundError, match=r"x\.onnx does not exist"):
        infer.main([*base, "--onnx", str(tmp_path / "x.onnx")])
