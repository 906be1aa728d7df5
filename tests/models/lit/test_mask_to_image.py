"""The SPADE training pipeline end to end: learning, resume, inference from checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

import infer
from models.app.checkpoint import load_generator
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.mask_to_image import MaskToImageModule
from models.spade import SPADEGenerator
from tests.models.data.data_files import write_ids

TINY_MODEL = dict(ngf=8, ndf=8, num_D=1, n_layers_D=2, norm_G="batch", lambda_vgg=0.0, lpips=False)


def _data(**kw) -> SemanticDataModule:
    args = dict(dataset_mode="shapes", crop_size=32, num_train=64, num_val=16, batch_size=8, num_workers=0)
    return SemanticDataModule(**{**args, **kw})


def _val_metric(trainer: pl.Trainer, model: MaskToImageModule, dm: SemanticDataModule) -> float:
    return trainer.validate(model, datamodule=dm, verbose=False)[0]["val/class_color_error"]


def test_short_training_lowers_the_class_colour_error(tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    pl.seed_everything(0)
    dm = _data()
    model = MaskToImageModule(**TINY_MODEL, lr_g=4e-4)
    trainer = tiny_trainer(tmp_path, max_epochs=6, enable_checkpointing=False)
    before = _val_metric(trainer, model, dm)
    trainer.fit(model, datamodule=dm)
    after = _val_metric(trainer, model, dm)
    assert trainer.global_step == 6 * 8 * 2  # two optimiser steps (G, D) per batch
    assert after < 0.6 * before, (before, after)


def test_resume_continues_step_count_and_optimiser_state(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    pl.seed_everything(0)
    dm = _data(num_train=16)
    model = MaskToImageModule(**TINY_MODEL)
    trainer = tiny_trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    ckpt = tmp_path / "one.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["global_step"] == 4
    assert len(saved["optimizer_states"]) == 2

    resumed = MaskToImageModule(**TINY_MODEL)
    trainer2 = tiny_trainer(tmp_path, max_epochs=2, limit_val_batches=0)
    first_state: dict = {}

    class Capture(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            first_state["step"] = trainer.global_step
            first_state["adam_step"] = trainer.optimizers[0].state_dict()["state"][0]["step"].item()

    trainer2.callbacks.append(Capture())
    trainer2.fit(resumed, datamodule=dm, ckpt_path=ckpt)
    assert first_state == {"step": 4, "adam_step": 2.0}
    assert trainer2.global_step == 8


def test_hparams_record_the_label_layout(tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    dm = _data(num_train=8)
    model = MaskToImageModule(**TINY_MODEL)
    trainer = tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    assert model.hparams.label_nc == dm.layout.label_nc
    assert model.hparams.crop_size == 32
    rebuilt = MaskToImageModule(**{k: v for k, v in model.hparams.items() if not k.startswith("_")})
    assert rebuilt.generator is not None
    rebuilt.load_state_dict(model.state_dict())


def test_vae_path_trains_a_step(tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    dm = _data(num_train=4, batch_size=2, no_instance=True)
    model = MaskToImageModule(**TINY_MODEL, use_vae=True, z_dim=8)
    trainer = tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    assert "G/kld" in trainer.callback_metrics
    ckpt = tmp_path / "vae.ckpt"
    trainer.save_checkpoint(ckpt)
    labels = _label_folder(tmp_path / "labels", 2, dm.layout.label_nc)
    style = tmp_path / "style.png"
    Image.fromarray(np.full((20, 30, 3), (200, 30, 30), np.uint8)).save(style)
    base = ["spade", "--checkpoint", str(ckpt), "--labels", str(labels), "--model-size"]
    assert infer.main([*base, "--out", str(tmp_path / "a"), "--style", str(style)]) == 0
    assert infer.main([*base, "--out", str(tmp_path / "b"), "--seed", "1"]) == 0
    styled = np.asarray(Image.open(tmp_path / "a" / "mask_0.png"), dtype=np.float32)
    random_z = np.asarray(Image.open(tmp_path / "b" / "mask_0.png"), dtype=np.float32)
    assert np.abs(styled - random_z).max() > 0  # the style image's code, not a random z


def test_style_needs_a_vae_model(tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    model = MaskToImageModule(**TINY_MODEL, label_nc=3, contain_dontcare_label=False, use_instance=False,
                              crop_size=32, aspect_ratio=1.0)
    trainer = tiny_trainer(tmp_path, max_steps=0)
    trainer.strategy.connect(model)
    ckpt = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(ckpt)
    labels = _label_folder(tmp_path / "labels", 1, 3)
    with pytest.raises(ValueError, match="--style needs a generator trained with use_vae=True"):
        infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(labels), "--out", str(tmp_path),
                    "--style", str(labels / "mask_0.png")])


def test_non_finite_loss_stops_training_with_a_clear_message(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    class Poison(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            with torch.no_grad():
                pl_module.generator.conv_img.bias.fill_(float("nan"))

    dm = _data(num_train=4, batch_size=2)
    trainer = tiny_trainer(tmp_path, max_steps=6, limit_val_batches=0, callbacks=[Poison()])
    with pytest.raises(FloatingPointError, match="G/gan became nan at step 0; training stopped"):
        trainer.fit(MaskToImageModule(**TINY_MODEL), datamodule=dm)


def _label_folder(root: Path, count: int, label_nc: int) -> Path:
    """Label maps of different sizes in ``root``, and instance maps in ``root/../instances``."""
    gen = torch.Generator().manual_seed(0)
    for i in range(count):
        ids = torch.randint(label_nc, (24 + i, 40), generator=gen).numpy()
        write_ids(root / f"mask_{i}.png", ids)
        write_ids(root.parent / "instances" / f"mask_{i}.png", ids)
    return root


def test_infer_from_lightning_checkpoint_writes_one_image_per_label(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path, capsys) -> None:
    dm = _data(num_train=8)
    model = MaskToImageModule(**TINY_MODEL)
    trainer = tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    labels = _label_folder(tmp_path / "labels", 3, dm.layout.label_nc)
    out = tmp_path / "out"
    base = ["spade", "--checkpoint", str(ckpt), "--labels", str(labels), "--out", str(out)]
    # The README's command, as printed: no --instances, the class boundaries stand in (and it says so).
    assert infer.main(base) == 0
    assert "class boundaries stand in" in capsys.readouterr().out
    without = [np.asarray(Image.open(out / f"mask_{i}.png")) for i in range(3)]
    assert infer.main([*base, "--batch-size", "2", "--instances", str(tmp_path / "instances")]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["mask_0.png", "mask_1.png", "mask_2.png"]
    assert Image.open(out / "mask_1.png").size == (40, 25)  # the label map's own size
    # these instance maps equal the label maps, so the stand-in gives the same images
    assert all(np.array_equal(a, np.asarray(Image.open(out / f"mask_{i}.png"))) for i, a in enumerate(without))


def test_infer_from_official_generator_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = SPADEGenerator(5, ngf=4, crop_size=32, norm="batch")
    official = tmp_path / "latest_net_G.pth"
    torch.save(g.state_dict(), official)
    labels = _label_folder(tmp_path / "labels", 2, 5)
    out = tmp_path / "out"
    args = ["spade", "--checkpoint", str(official), "--labels", str(labels / "mask_0.png"),
            "--out", str(out), "--label-nc", "5", "--no-instance", "--crop-size", "32", "--model-size"]
    assert infer.main(args) == 0
    assert [p.name for p in out.iterdir()] == ["mask_0.png"]
    with pytest.raises(ValueError, match="does not match the SPADEGenerator architecture"):
        infer.main([*args[:7], "--label-nc", "7", "--no-instance", "--crop-size", "32"])


@pytest.mark.parametrize(("warmup", "step", "decay"), [(True, 0, 0.1), (True, 90, 0.91), (True, 10**6, 0.999),
                                                     (False, 0, 0.999)])
def test_ema_update_warms_up_from_the_initial_weights(warmup: bool, step: int, decay: float,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    model = MaskToImageModule(**TINY_MODEL, ema_decay=0.999, ema_warmup=warmup, label_nc=3,
                              contain_dontcare_label=False, use_instance=False, crop_size=32, aspect_ratio=1.0)
    before = {k: v.clone() for k, v in model.generator_ema.state_dict().items()}
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(1.0)
    monkeypatch.setattr(type(model), "global_step", property(lambda self: step))
    model._update_ema()
    live, ema = model.generator.state_dict(), model.generator_ema.state_dict()
    key = "conv_img.weight"  # min(0.999, (1 + t) / (10 + t)) with warm-up; 0.999 from the start without
    torch.testing.assert_close(ema[key], decay * before[key] + (1 - decay) * live[key])


def test_ema_generator_tracks_the_weights_and_is_used_for_inference(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    pl.seed_everything(0)
    dm = _data(num_train=16, num_val=4)
    model = MaskToImageModule(**TINY_MODEL, ema_decay=0.5, ema_recalibrate_batches=2)
    assert model.generator is None  # built at setup, from the DataModule's label layout
    trainer = tiny_trainer(tmp_path, max_epochs=1)
    trainer.fit(model, datamodule=dm)
    live = model.generator.state_dict()
    ema = model.generator_ema.state_dict()
    key = "conv_img.weight"
    assert not torch.equal(live[key], ema[key])
    assert model.inference_generator is model.generator_ema
    # recalibrated running statistics come from the EMA weights, not copied from the live net
    stat = "head_0.norm_0.param_free_norm.running_mean"
    assert not torch.equal(live[stat], ema[stat])
    ckpt = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded, _ = load_generator(ckpt)
    torch.testing.assert_close(loaded.state_dict()[key], ema[key])
    # `train.py validate` without a fit: the recalibration reads the DataModule's training data
    fresh = MaskToImageModule(**TINY_MODEL, ema_decay=0.5, ema_recalibrate_batches=2)
    metrics = tiny_trainer(tmp_path / "validate").validate(fresh, datamodule=_data(num_train=16, num_val=4),
                                                           ckpt_path=ckpt, verbose=False)
    assert np.isfinite(metrics[0]["val/class_color_error"])
