"""The command-line round trip for a VAE SPADE (z and style encoder) and for AdaIN style transfer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

import infer
from models.adain import StyleTransfer
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.mask_to_image import MaskToImageModule
from tests.models.app.export_cases import perturbed_
from tests.models.data.data_files import read_images, write_ids, write_image

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


def _same_images(a: Path, b: Path) -> None:
    left, right = read_images(a), read_images(b)
    assert left.keys() == right.keys() and left
    for name in left:
        assert np.abs(left[name] - right[name]).max() <= 1, name  # 8-bit rounding


def test_vae_round_trip_draws_the_same_z_and_encodes_the_same_style(tiny_trainer: Callable[..., pl.Trainer],
                                                                    tmp_path: Path) -> None:
    dm = SemanticDataModule(dataset_mode="shapes", crop_size=32, num_train=4, num_val=2, batch_size=2,
                            num_workers=0, no_instance=True)
    model = MaskToImageModule(ngf=8, ndf=8, num_D=1, n_layers_D=2, norm_G="batch", lambda_vgg=0.0,
                              lpips=False, use_vae=True, z_dim=8)
    tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(model, datamodule=dm)
    ckpt = tmp_path / "vae.ckpt"
    model.trainer.save_checkpoint(ckpt)
    labels = tmp_path / "labels"
    for i in range(2):
        write_ids(labels / f"mask_{i}.png", np.random.default_rng(i).integers(0, dm.layout.label_nc, (32, 32)))
    style = write_image(tmp_path / "style.png", 40, 36)
    export = ["export", "--checkpoint", str(ckpt), "--task", "spade", "--format", "onnx"]
    assert infer.main([*export, "--out", str(tmp_path / "g.onnx")]) == 0
    assert infer.main([*export, "--part", "encoder", "--out", str(tmp_path / "e.onnx")]) == 0
    run = ["spade", "--labels", str(labels), "--seed", "3"]
    assert infer.main([*run, "--checkpoint", str(ckpt), "--out", str(tmp_path / "torch_z")]) == 0
    assert infer.main([*run, "--onnx", str(tmp_path / "g.onnx"), "--out", str(tmp_path / "onnx_z")]) == 0
    _same_images(tmp_path / "torch_z", tmp_path / "onnx_z")
    styled = [*run, "--style", str(style)]
    assert infer.main([*styled, "--checkpoint", str(ckpt), "--out", str(tmp_path / "torch_s")]) == 0
    with pytest.raises(ValueError, match="no style encoder: pass the encoder file"):
        infer.main([*styled, "--onnx", str(tmp_path / "g.onnx"), "--out", str(tmp_path / "x")])
    assert infer.main([*styled, "--onnx", str(tmp_path / "g.onnx"), "--encoder", str(tmp_path / "e.onnx"),
                       "--out", str(tmp_path / "onnx_s")]) == 0
    _same_images(tmp_path / "torch_s", tmp_path / "onnx_s")


def test_adain_round_trip_from_published_layout_weights(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    net = perturbed_(StyleTransfer(), gain=1.0)
    torch.save(net.encoder.state_dict(), tmp_path / "vgg.pth")
    torch.save(net.decoder.state_dict(), tmp_path / "decoder.pth")
    weights = ["--vgg", str(tmp_path / "vgg.pth"), "--decoder", str(tmp_path / "decoder.pth")]
    assert infer.main(["export", *weights, "--task", "adain", "--format", "onnx", "--onnx-exporter",
                       "tracing", "--out", str(tmp_path / "adain.onnx")]) == 0
    content = write_image(tmp_path / "content.png", 30, 44)
    style = write_image(tmp_path / "style.png", 28, 20, seed=1)
    run = ["adain", "--content", str(content), "--style", str(style), "--ext", "png", "--alpha", "0.8",
           "--content-size", "0", "--style-size", "0", "--preserve-color", "luminance", "--device", "cpu"]
    assert infer.main([*run, *weights, "--out", str(tmp_path / "torch")]) == 0
    assert infer.main([*run, "--onnx", str(tmp_path / "adain.onnx"), "--out", str(tmp_path / "onnx")]) == 0
    _same_images(tmp_path / "torch", tmp_path / "onnx")
    assert infer.cli([*run, *weights, "--onnx", str(tmp_path / "adain.onnx"), "--out", str(tmp_path)]) == 2
    assert "--onnx runs an exported model: give it alone" in capsys.readouterr().err
    assert infer.cli([*run, "--onnx", str(tmp_path / "adain.onnx"), "--style-weights", "1",
                       "--out", str(tmp_path)]) == 2
    assert "need the PyTorch model" in capsys.readouterr().err
