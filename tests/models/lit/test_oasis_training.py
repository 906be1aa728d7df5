"""OASIS as a training mode of ``MaskToImageModule`` (``discriminator="oasis"``): losses, learning, EMA, inference."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

import infer
import models.lit.mask_to_image as lit
from models.app.checkpoint import load_generator
from models.app.mask_to_image import MaskToImage
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.mask_to_image import MaskToImageModule
from models.oasis import (
    OASISDiscriminator,
    OASISGenerator,
    discriminator_loss,
    generator_loss,
    labelmix,
    labelmix_loss,
)
from tests.models.data.data_files import write_ids

TINY_OASIS = dict(discriminator="oasis", ngf=8, ndf=8, n_blocks_D=3, z_dim=8, norm_G="batch", lambda_vgg=0.0,
                  lambda_feat=0.0, lpips=False, betas=(0.0, 0.999))


def _data(**kw: Any) -> SemanticDataModule:
    args = dict(dataset_mode="shapes", crop_size=32, num_train=64, num_val=16, batch_size=8, num_workers=0)
    return SemanticDataModule(**{**args, **kw})


def _val_metric(trainer: pl.Trainer, model: MaskToImageModule, dm: SemanticDataModule) -> float:
    return trainer.validate(model, datamodule=dm, verbose=False)[0]["val/class_color_error"]


class _Capture(pl.Callback):
    """Record what one training step saw: D's weights before it, the batch, the generated images."""

    def __init__(self, seen: dict[str, Any]) -> None:
        self.seen = seen

    def on_train_start(self, trainer: pl.Trainer, pl_module: MaskToImageModule) -> None:
        pl_module.generator.register_forward_hook(self._record_fake)

    def _record_fake(self, module: torch.nn.Module, inputs: Any, out: torch.Tensor) -> None:
        self.seen.setdefault("fake", out.detach())  # returns None: the output stays as it is

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: MaskToImageModule, batch: Any,
                             batch_idx: int) -> None:
        self.seen["D"] = copy.deepcopy(pl_module.discriminator)
        self.seen["batch"] = batch


@pytest.mark.parametrize("balance", ["paper", "none"])
def test_one_g_and_d_step_log_the_oasis_losses_of_the_same_tensors(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, balance: str) -> None:
    pl.seed_everything(0)
    dm = _data(num_train=8)
    model = MaskToImageModule(**TINY_OASIS, lambda_labelmix=10.0, class_balance=balance)
    seen: dict[str, Any] = {}
    draw = lit.labelmix_mask
    monkeypatch.setattr(lit, "labelmix_mask", lambda label: seen.setdefault("mask", draw(label)))
    trainer = tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0, callbacks=[_Capture(seen)])
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 2  # one G step + one D step

    assert isinstance(model.discriminator, OASISDiscriminator)
    assert model.discriminator.label_nc == dm.layout.num_ids
    assert model.discriminator.widths == (16, 16, 32)  # 2, 2, 4 × ndf
    assert isinstance(model.generator, OASISGenerator)
    assert model.generator.net.semantic_nc == dm.layout.semantic_nc + 8  # label map + z_dim noise channels

    d, label, real, fake, mask = seen["D"], seen["batch"]["label"], seen["batch"]["image"], seen["fake"], seen["mask"]
    assert fake.shape == real.shape
    with torch.no_grad():  # same call order as the step: D(fake) in the G step, then one pass of the D step
        g_want = generator_loss(d(fake), label, mode=balance)
        n = real.shape[0]
        logits = d(torch.cat([fake, real, labelmix(real, fake, mask)]))
        d_want = discriminator_loss(logits[n:2 * n], logits[:n], label, mode=balance)
        lm_want = labelmix_loss(logits[2 * n:], logits[n:2 * n], logits[:n], mask) * 10.0
    got = trainer.callback_metrics
    for key, want in (("G/oasis", g_want), ("D/oasis", d_want), ("D/labelmix", lm_want)):
        assert torch.isfinite(got[key]), key
        torch.testing.assert_close(got[key], want, rtol=1e-5, atol=1e-6, msg=key)
    assert lm_want > 0
    assert "G/feat" not in got and "G/vgg" not in got
    torch.testing.assert_close(got["G/total"], g_want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("generator", ["spade", "clade"])
def test_short_training_lowers_the_class_colour_error(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path, generator: str) -> None:
    pl.seed_everything(0)
    dm = _data()
    model = MaskToImageModule(**TINY_OASIS, generator=generator, lr_g=4e-4)
    trainer = tiny_trainer(tmp_path, max_epochs=5, enable_checkpointing=False)
    before = _val_metric(trainer, model, dm)
    trainer.fit(model, datamodule=dm)
    after = _val_metric(trainer, model, dm)
    assert trainer.global_step == 5 * 8 * 2  # 40 iterations, a G and a D step each
    # measured at seed 0: spade 0.315 → 0.232, clade 0.451 → 0.236
    assert after < 0.8 * before, (before, after)


def test_region_noise_trains_and_noise_is_redrawn_every_call(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    pl.seed_everything(0)
    dm = _data(num_train=8)
    model = MaskToImageModule(**TINY_OASIS, noise_mode="region")
    trainer = tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    assert model.generator.noise_mode == "region"
    batch = next(iter(dm.train_dataloader()))
    seg = model.generator_input(batch)
    assert seg.shape[1] == dm.layout.semantic_nc  # the dense map; the wrapper adds the noise
    model.generator.eval()
    with torch.no_grad():
        assert not torch.equal(model.generator(seg), model.generator(seg))


def test_ema_generator_is_the_one_validated(tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pl.seed_everything(0)
    dm = _data(num_train=16, num_val=4)
    model = MaskToImageModule(**TINY_OASIS, ema_decay=0.5, ema_recalibrate_batches=2)
    used: list[torch.nn.Module] = []
    synthesize = model._synthesize  # validation, sample grids and EMA recalibration go through it
    monkeypatch.setattr(model, "_synthesize", lambda net, *a: (used.append(net), synthesize(net, *a))[1])
    trainer = tiny_trainer(tmp_path, max_epochs=1)
    trainer.fit(model, datamodule=dm)  # validates at the end of the epoch
    assert "val/class_color_error" in trainer.callback_metrics
    assert isinstance(model.generator_ema, OASISGenerator)
    key = "net.conv_img.weight"
    assert not torch.equal(model.generator.state_dict()[key], model.generator_ema.state_dict()[key])
    assert model.inference_generator is model.generator_ema
    model.sample_columns(next(iter(dm.val_dataloader())))
    assert len(used) >= 4  # 2 recalibration batches, 1 validation batch, the sample grid
    assert all(net is model.generator_ema for net in used)


def test_checkpoint_rebuilds_the_generator_and_seeds_its_noise(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    pl.seed_everything(0)
    dm = _data(num_train=16, num_val=4)
    model = MaskToImageModule(**TINY_OASIS, generator="clade", ema_decay=0.9, ema_warmup=False)
    trainer = tiny_trainer(tmp_path, max_steps=4, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    ckpt = tmp_path / "oasis.ckpt"
    trainer.save_checkpoint(ckpt)

    loaded, layout = load_generator(ckpt)
    assert isinstance(loaded, OASISGenerator) and loaded.z_dim == 8 and loaded.noise_mode == "pixel"
    assert layout == model.layout
    for k, v in model.generator_ema.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, msg=k)

    app = MaskToImage.load(ckpt)
    mask = dm.val_set[0]["label"]
    a, b = app.generate(mask, seed=0), app.generate(mask, seed=0)
    c = app.generate(mask, seed=1)
    assert a[0].shape == (3, 32, 32) and bool(torch.isfinite(a[0]).all())
    assert torch.equal(a[0], b[0])
    assert not torch.equal(a[0], c[0])
    # image i of a batch draws with seed + i: the batch's second image is the single image with seed 1
    pair = app.generate([mask, mask], seed=0)
    torch.testing.assert_close(pair[1], c[0], atol=2e-3, rtol=0)  # batched convs round differently
    # infer.py spade runs it too: --seed picks the noise
    label_file = write_ids(tmp_path / "labels" / "mask.png", mask)
    runs = []
    for seed in (0, 0, 1):
        out = tmp_path / f"out{len(runs)}"
        assert infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(label_file), "--out", str(out),
                           "--seed", str(seed)]) == 0
        runs.append(np.asarray(Image.open(out / "mask.png")))
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])
    # exported (ONNX: the noise is a graph input the runtime draws; safetensors: rebuilt without pickle),
    # the same seed gives the same image as the checkpoint, and the EMA generator is the one exported
    for fmt in ("onnx", "safetensors"):
        out = tmp_path / f"g.{fmt}"
        assert infer.main(["export", "--checkpoint", str(ckpt), "--task", "spade", "--format", fmt,
                           "--out", str(out)]) == 0
        exported = MaskToImage.load(out)
        assert exported.draws_noise and exported.layout == layout
        for seed, want in ((0, a[0]), (1, c[0])):
            got = exported.generate(mask, seed=seed)[0]  # folded spectral norm rounds a few pixels apart
            assert (got - want).abs().max() < 2e-3 and (got - want).abs().mean() < 1e-5, (fmt, seed)
    live = MaskToImage(model.generator.eval(), layout)  # the live generator differs: EMA is what ships
    assert (live.generate(mask, seed=0)[0] - a[0]).abs().max() > 1e-3


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(generator="rain"), "spade | clade"),
    (dict(use_vae=True), "without use_vae"),
    (dict(lambda_feat=10.0), "lambda_feat: 0"),
    (dict(noise_mode="image"), "noise_mode"),
    (dict(class_balance="median"), "class_balance must be one of"),
    (dict(discriminator="patch"), "discriminator must be one of"),
])
def test_unsupported_oasis_settings_raise_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MaskToImageModule(**{**TINY_OASIS, **kwargs})


def test_image_size_must_fit_the_u_net() -> None:
    with pytest.raises(ValueError, match="multiples of 64"):
        MaskToImageModule(**TINY_OASIS | dict(n_blocks_D=6), label_nc=3, contain_dontcare_label=False,
                          use_instance=False, crop_size=32, aspect_ratio=1.0)
