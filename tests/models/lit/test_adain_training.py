"""Style-transfer training: data module, loss decrease, resume, configs through train.py."""

from __future__ import annotations

import sys

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

import train
from models.data.io import ImageReadError
from models.data.style_folders import ContentStyleDataModule, make_synthetic_folders
from models.lit.style_transfer import StyleTransferModule

STEPS_ONLY = dict(max_epochs=-1, limit_val_batches=0)
"""``tiny_trainer`` overrides here: ``max_steps`` alone ends the run, no validation."""


def _data(tmp_path, **kwargs) -> ContentStyleDataModule:
    content, style = make_synthetic_folders(tmp_path / "data", num_content=6, num_style=3, size=(40, 52))
    defaults = {"load_size": 36, "crop_size": 32, "batch_size": 2, "num_workers": 0, "num_val": 2}
    return ContentStyleDataModule(str(content), str(style), **{**defaults, **kwargs})


def test_datamodule_reads_folders_recursively_and_keeps_aspect(tmp_path):
    content, style = make_synthetic_folders(tmp_path, num_content=2, num_style=2, size=(30, 60))
    nested = content / "sub" / "deeper"
    nested.mkdir(parents=True)
    Image.new("LA", (50, 25), (128, 200)).save(nested / "grey_alpha.png")
    Image.new("RGB", (40, 20), (10, 20, 30)).save(nested / "photo.JPG")
    dm = ContentStyleDataModule(str(content), str(style), load_size=24, crop_size=16, batch_size=4,
                                num_workers=0, samples_per_epoch=12)
    dm.setup("fit")
    assert len(dm.train_set.content_files) == 4 and len(dm.train_set) == 12
    resized = dm._transform(train=False).transforms[0](torch.zeros(3, 30, 60))
    assert resized.shape == (3, 24, 48)  # shorter side to load_size, aspect kept
    batch = next(iter(dm.train_dataloader()))
    assert batch["content"].shape == batch["style"].shape == (4, 3, 16, 16)
    assert 0 <= batch["content"].min() and batch["content"].max() <= 1
    val = [dm.val_set[i]["style"] for i in range(2)]
    torch.testing.assert_close(val, [dm.val_set[i]["style"] for i in range(2)])  # fixed pairing
    torch.manual_seed(0)
    dm.train_set._load = lambda files, index: index  # record which files a sample reads
    pairs = [dm.train_set[i] for i in range(12)]
    assert [p["content"] for p in pairs] == [i % 4 for i in range(12)]
    assert {p["style"] for p in pairs} == {0, 1}  # a random style per sample


def test_datamodule_reports_corrupt_files_and_bad_arguments(tmp_path):
    dm = _data(tmp_path)
    bad = tmp_path / "data" / "style" / "broken.png"
    bad.write_bytes(b"\x89PNG truncated")
    dm.setup("fit")
    idx = dm.train_set.style_files.index(bad)
    with pytest.raises(ImageReadError, match=r"broken\.png"):
        dm.train_set._load(dm.train_set.style_files, idx)
    dm.train_set.skip_corrupt = True
    with pytest.warns(UserWarning, match="skipping unreadable image: .*broken.png"):
        assert dm.train_set._load(dm.train_set.style_files, idx).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="crop_size <= load_size"):
        ContentStyleDataModule("a", "b", load_size=16, crop_size=32)
    with pytest.raises(ValueError, match="set content_dir and style_dir"):
        ContentStyleDataModule("a")
    with pytest.raises(ValueError, match="leave content_dir and style_dir unset"):
        ContentStyleDataModule("a", "b", synthetic=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ContentStyleDataModule("/nonexistent/c", "/nonexistent/s").setup("fit")


def test_training_lowers_the_loss_and_resumes(tiny_trainer, tmp_path):
    pl.seed_everything(0)
    dm = _data(tmp_path)
    model = StyleTransferModule(encoder_weights=None, lr=1e-3)
    dm.setup("fit")
    probe = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        before = model.losses(probe)["loss"].item()
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    tiny_trainer(tmp_path, max_steps=12, **STEPS_ONLY, callbacks=[ckpt]).fit(model, datamodule=dm)
    with torch.no_grad():
        after = model.losses(probe)["loss"].item()
    assert after < 0.8 * before, (before, after)

    saved = model.net.decoder[28].weight.detach().clone()
    resumed = StyleTransferModule(encoder_weights=None, lr=1e-3)
    seen = {}

    class Probe(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["step"] = trainer.global_step
            seen["weight"] = pl_module.net.decoder[28].weight.detach().clone()

    resumed_ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt2", save_last=True)
    trainer = tiny_trainer(tmp_path, max_steps=14, **STEPS_ONLY, callbacks=[Probe(), resumed_ckpt])
    trainer.fit(resumed, datamodule=dm, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert seen["step"] == 12 and trainer.global_step == 14
    torch.testing.assert_close(seen["weight"], saved)
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(1e-3 / (1 + 5e-5 * 14))


def test_adacon_trains_its_modulation(tiny_trainer, tmp_path):
    pl.seed_everything(0)
    model = StyleTransferModule(modulation="adacon", encoder_weights=None, style_dim=8, style_hidden=16,
                                lr=1e-3)
    start = {k: v.clone() for k, v in model.net.modulation.state_dict().items()}
    tiny_trainer(tmp_path, max_steps=2, **STEPS_ONLY, enable_checkpointing=False).fit(model, datamodule=_data(tmp_path))
    changed = [k for k, v in model.net.modulation.state_dict().items() if not torch.equal(v, start[k])]
    assert "adacon.mlp.0.weight" in changed and any(k.startswith("style_encoder") for k in changed)
    assert all(not p.requires_grad for p in model.net.encoder.parameters())


def test_sample_columns_and_tiny_config_through_train_py(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py"])
    model = StyleTransferModule(encoder_weights=None)
    batch = {"content": torch.rand(2, 3, 24, 24), "style": torch.rand(2, 3, 24, 24)}
    columns = model.sample_columns(batch)
    assert [tuple(c.shape) for c in columns] == [(2, 3, 24, 24)] * 3
    assert all(0 <= c.min() and c.max() <= 1 for c in columns)
    train.main(["fit", "--config", "configs/adain_tiny.yaml", "--trainer.max_steps=3",
                "--trainer.val_check_interval=3", f"--trainer.default_root_dir={tmp_path}",
                f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false"])
    assert (tmp_path / "adain_tiny" / "version_0" / "samples" / "step_000003.png").is_file()
    assert (tmp_path / "adain_tiny" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    for config in ("configs/adain.yaml", "configs/adacon.yaml"):
        with pytest.raises(SystemExit) as exit_info:
            train.main(["fit", "--config", config, "--print_config"])
        assert exit_info.value.code in (0, None)
