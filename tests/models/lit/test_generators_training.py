"""spade | clade | rain from one LightningModule: short training, region swaps, checkpoints, infer.py rain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

import condnorm
import infer
from models.app import RegionStyles
from models.app.checkpoint import load_generator
from models.data.io import save_image
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.mask_to_image import MaskToImageModule
from models.sean import SEANGenerator
from models.sean.codes import RegionCodes
from tests.models.data.data_files import write_ids

TINY_MODEL = dict(ngf=8, ndf=8, num_D=1, n_layers_D=2, norm_G="batch", lambda_vgg=0.0, lpips=False,
                  lr_g=4e-4, style_dim=16)


def _data(kind: str, **kw) -> SemanticDataModule:
    args = dict(dataset_mode="shapes", crop_size=32, num_train=32, num_val=16, batch_size=8, num_workers=0,
                no_instance=kind == "rain")
    return SemanticDataModule(**{**args, **kw})


def _train(tiny_trainer: Callable[..., pl.Trainer], kind: str, root: Path) -> dict:
    """Validate, train 24 steps, validate again; save the checkpoint."""
    pl.seed_everything(0)
    dm = _data(kind)
    model = MaskToImageModule(generator=kind, **TINY_MODEL)
    trainer = tiny_trainer(root, max_epochs=6, enable_checkpointing=False)
    before = trainer.validate(model, datamodule=dm, verbose=False)[0]
    trainer.fit(model, datamodule=dm)
    after = trainer.validate(model, datamodule=dm, verbose=False)[0]
    ckpt = root / f"{kind}.ckpt"
    trainer.save_checkpoint(ckpt)
    return dict(model=model, dm=dm, before=before, after=after, ckpt=ckpt, trainer=trainer)


@pytest.fixture(scope="module")
def rain_run(tmp_path_factory: pytest.TempPathFactory, tiny_trainer: Callable[..., pl.Trainer]) -> dict:
    return _train(tiny_trainer, "rain", tmp_path_factory.mktemp("rain"))


def _assert_learned(run: dict) -> None:
    before, after = run["before"], run["after"]
    assert run["trainer"].global_step == 6 * 4 * 2  # 4 batches per epoch, G and D steps
    assert after["val/l1"] < 0.5 * before["val/l1"], (before, after)
    assert after["val/class_color_error"] < 0.8 * before["val/class_color_error"], (before, after)


@pytest.mark.parametrize("kind", ["spade", "clade"])
def test_short_training_lowers_the_losses_and_the_checkpoint_reloads(
        tiny_trainer: Callable[..., pl.Trainer], kind: str, tmp_path: Path) -> None:
    run = _train(tiny_trainer, kind, tmp_path)
    _assert_learned(run)
    generator, layout = load_generator(run["ckpt"])
    norm_type = condnorm.CLADE if kind == "clade" else condnorm.SPADE
    assert isinstance(generator.head_0.norm_0, norm_type) and layout.use_instance
    batch = next(iter(run["dm"].val_dataloader()))
    seg = run["model"].encode_labels(batch)
    torch.testing.assert_close(generator(seg), run["model"].generator.eval()(seg))


def test_rain_training_reconstructs_from_region_codes(rain_run: dict) -> None:
    _assert_learned(rain_run)
    generator, layout = load_generator(rain_run["ckpt"])
    assert isinstance(generator, SEANGenerator) and not layout.use_instance
    assert generator.style_dim == 16 and generator.label_nc == 6


def test_swapping_one_regions_code_changes_mostly_that_region(rain_run: dict) -> None:
    """Trained 24 steps: give every sample's region k the code of region k from another sample."""
    model, dm = rain_run["model"], rain_run["dm"]
    g = model.generator.eval()
    batch = next(iter(dm.val_dataloader()))
    seg = model.encode_labels(batch)
    with torch.no_grad():
        codes = g.encode(batch["image"], seg)
        base = g(seg, style_codes=codes, noise=torch.Generator().manual_seed(0))
        inside_total, energy_total = 0.0, 0.0
        for k in range(seg.shape[1]):
            has_k = torch.nonzero(seg[:, k].flatten(1).sum(1) > 0).flatten()
            if len(has_k) < 2:
                continue
            swapped = codes.clone()
            swapped[has_k, k] = codes[has_k.roll(1), k]
            out = g(seg, style_codes=swapped, noise=torch.Generator().manual_seed(0))
            energy = (out - base).pow(2).sum(1)[has_k]
            inside = energy[seg[has_k, k] > 0].sum()
            area = float((seg[has_k, k] > 0).float().mean())
            assert inside / energy.sum() > max(area, 0.4), (k, float(inside / energy.sum()), area)
            inside_total, energy_total = inside_total + float(inside), energy_total + float(energy.sum())
    assert inside_total / energy_total > 0.65


def _write_sample(root: Path, name: str, sample: dict) -> tuple[Path, Path]:
    image = save_image((sample["image"] + 1) / 2, root / f"{name}.png")
    return image, write_ids(root / f"{name}_mask.png", sample["label"].numpy())


def test_infer_rain_end_to_end(rain_run: dict, tmp_path: Path) -> None:
    data = rain_run["dm"].val_dataloader().dataset
    target_img, target_mask = _write_sample(tmp_path, "target", data[0])
    ref_img, _ = _write_sample(tmp_path, "ref", data[1])
    ref_labels = data[1]["label"].clone()
    ref_labels[ref_labels == 1] = 0  # the reference has no ground (class 1)
    ref_mask = write_ids(tmp_path / "ref_mask.png", ref_labels.numpy())
    donor = next(i for i in range(2, len(data)) if (data[i]["label"] == 2).any())
    other_img, other_mask = _write_sample(tmp_path, "other", data[donor])
    ckpt = str(rain_run["ckpt"])
    common = ["rain", "--checkpoint", ckpt, "--labels", str(target_mask)]
    assert infer.main([*common, "--style", str(ref_img), "--style-labels", str(ref_mask),
                       "--style-for", f"2={other_img}:{other_mask}", "--target-image", str(target_img),
                       "--codes-out", str(tmp_path / "codes.safetensors"), "--out", str(tmp_path / "a")]) == 0
    assert Image.open(tmp_path / "a" / "target_mask.png").size == (32, 32)

    model = RegionStyles.load(rain_run["ckpt"])
    ref = model.codes(ref_img, ref_labels)
    other = model.codes(other_img, data[donor]["label"])
    own = model.codes(target_img, data[0]["label"])
    mixed = RegionCodes.load(tmp_path / "codes.safetensors")
    assert not ref.present[1] and own.present[1]
    torch.testing.assert_close(mixed.codes[1], own.codes[1])  # absent from --style: the target's own
    torch.testing.assert_close(mixed.codes[2], other.codes[2])  # --style-for wins
    torch.testing.assert_close(mixed.codes[0], ref.codes[0])  # --style
    # The saved codes alone give the same image (same noise seed); .pt round trip too.
    assert infer.main([*common, "--codes", str(tmp_path / "codes.safetensors"),
                       "--codes-out", str(tmp_path / "codes.pt"), "--out", str(tmp_path / "b")]) == 0
    a, b = (np.asarray(Image.open(tmp_path / d / "target_mask.png")) for d in "ab")
    assert np.array_equal(a, b)
    assert torch.equal(RegionCodes.load(tmp_path / "codes.pt").codes, mixed.codes)
    # Without --target-image, ground (absent from the reference) falls back to zeros.
    assert infer.main([*common, "--style", str(ref_img), "--style-labels", str(ref_mask),
                       "--codes-out", str(tmp_path / "z.pt"), "--out", str(tmp_path / "c")]) == 0
    zeros = RegionCodes.load(tmp_path / "z.pt")
    assert not zeros.present[1] and not zeros.codes[1].any()


def test_infer_rain_errors(rain_run: dict, tmp_path: Path) -> None:
    mask = write_ids(tmp_path / "m.png", rain_run["dm"].val_dataloader().dataset[0]["label"].numpy())
    common = ["--checkpoint", str(rain_run["ckpt"]), "--labels", str(mask), "--out", str(tmp_path)]
    with pytest.raises(ValueError, match="needs a style source"):
        infer.main(["rain", *common])
    with pytest.raises(ValueError, match=r"--style-for '9=x.png': regions \[9\] are outside \[0, 6\)"):
        infer.main(["rain", *common, "--style-for", "9=x.png"])
    with pytest.raises(ValueError, match=r"expected R\[,R\.\.\.\]=IMAGE\[:MASK\]"):
        infer.main(["rain", *common, "--style-for", "sky=x.png"])
    with pytest.raises(ValueError, match=r"holds a RAIN \(SEAN\) generator.*\(infer.py rain\)"):
        infer.main(["spade", *common])


def test_module_rejects_rain_with_vae_or_instance_edges() -> None:
    layout = dict(label_nc=6, contain_dontcare_label=False, crop_size=32, aspect_ratio=1.0, lambda_vgg=0.0)
    with pytest.raises(ValueError, match="takes its style from region codes; use_vae applies to spade/clade"):
        MaskToImageModule(generator="rain", use_vae=True, use_instance=False, **layout)
    with pytest.raises(ValueError, match="no_instance: true"):
        MaskToImageModule(generator="rain", use_instance=True, **layout)
    with pytest.raises(ValueError, match="unknown generator 'pix2pixhd'"):
        MaskToImageModule(generator="pix2pixhd", use_instance=True, **layout)
    module = MaskToImageModule(generator="sean", use_instance=False, **{**TINY_MODEL, **layout})
    assert isinstance(module.generator, SEANGenerator) and module.discriminator is not None
