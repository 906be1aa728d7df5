import numpy as np
import pytest
import torch
from jsonargparse import ArgumentParser
from torchvision.transforms import v2

from models.data.label_layout import LabelLayout
from models.data.semantic_datamodule import SemanticDataModule
from models.data.semantic_input import semantic_input
from tests.models.data.data_files import write_ids, write_image, write_pair


def _custom_root(tmp_path, n=6, high=4):
    for i in range(n):
        ids = np.random.default_rng(i).integers(0, high, (20, 24))
        write_pair(tmp_path, f"p{i}", ids, instance=ids * 3)
    return tmp_path


def test_shapes_setup_and_batch():
    dm = SemanticDataModule("shapes", num_train=6, num_val=3, crop_size=32, aspect_ratio=2.0, batch_size=4,
                            num_workers=0, seed=1)
    layout = dm.layout
    assert layout == LabelLayout(6, False, True, "shapes") and layout.semantic_nc == 7
    dm.setup("fit")
    assert len(dm.train_set) == 6 and len(dm.val_set) == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 32) and batch["label"].shape == batch["instance"].shape
    assert len(batch["name"]) == 4 and batch["label"].dtype == torch.long
    seg = semantic_input(batch["label"], batch["instance"], label_nc=dm.layout.label_nc,
                         contain_dontcare_label=dm.layout.contain_dontcare_label, use_instance=dm.layout.use_instance)
    assert seg.shape == (4, dm.layout.semantic_nc, 16, 32)
    val_names = [n for b in dm.val_dataloader() for n in b["name"]]
    assert val_names == ["shapes_1_000006", "shapes_1_000007", "shapes_1_000008"]
    assert SemanticDataModule("shapes", num_val=0, no_instance=True).layout.semantic_nc == 6


def test_mode_defaults_without_files():
    expected = {"ade20k": (150, True, False, 151, "resize_and_crop", 256),
                "cityscapes": (35, False, True, 36, "fixed", 512),
                "coco": (182, True, True, 184, "resize_and_crop", 256)}
    for mode, values in expected.items():
        dm = SemanticDataModule(mode, dataroot="unused")
        layout = dm.layout
        assert (layout.label_nc, layout.contain_dontcare_label, layout.use_instance, layout.semantic_nc, dm.preprocess,
                dm.crop_size) == values, mode
    assert SemanticDataModule("cityscapes").aspect_ratio == 2.0
    custom = SemanticDataModule("custom", label_nc=13, instance_dir="inst")
    assert custom.layout.use_instance and custom.layout.semantic_nc == 14
    assert not SemanticDataModule("custom", label_nc=13).layout.use_instance
    coco = SemanticDataModule("coco", label_nc=10, contain_dontcare_label=False, no_instance=True)
    assert coco.layout.semantic_nc == 10


def test_init_errors():
    with pytest.raises(ValueError, match="custom: set label_nc to the number of classes"):
        SemanticDataModule("custom")
    with pytest.raises(ValueError, match="unknown dataset_mode 'pascal'; choose one of custom, ade20k"):
        SemanticDataModule("pascal")
    with pytest.raises(ValueError, match="shapes has 6 classes; label_nc=3 is too small"):
        SemanticDataModule("shapes", label_nc=3)


def test_custom_split_batch_and_instances(tmp_path):
    root = _custom_root(tmp_path)
    dm = SemanticDataModule("custom", dataroot=str(root), image_dir="img", label_dir="lbl",
                            instance_dir="inst", label_nc=4, load_size=20, crop_size=16, batch_size=2,
                            num_workers=0, val_fraction=0.34)
    dm.setup("fit")
    train = [s.name for s in dm.train_set.samples]
    val = [s.name for s in dm.val_set.samples]
    assert len(train) == 4 and len(val) == 2 and not set(train) & set(val)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 16, 16) and torch.equal(batch["instance"], batch["label"] * 3)
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in dm.val_set.transform.augment.transforms)
    assert any(isinstance(t, v2.RandomHorizontalFlip) for t in dm.train_set.transform.augment.transforms)
    again = SemanticDataModule("custom", dataroot=str(root), image_dir="img", label_dir="lbl", label_nc=4,
                               val_fraction=0.34)
    again.setup()
    assert [s.name for s in again.val_set.samples] == val  # split depends only on the seed
    no_val = SemanticDataModule("custom", dataroot=str(root), image_dir="img", label_dir="lbl", label_nc=4)
    no_val.setup("fit")
    assert len(no_val.train_set) == 6 and no_val.val_dataloader() == []


def test_setup_validates_every_label_map(tmp_path):
    root = _custom_root(tmp_path)
    write_image(root / "img" / "p9.jpg", 20, 24)
    write_ids(root / "lbl" / "p9.png", np.full((20, 24), 255))
    dm = SemanticDataModule("custom", dataroot=str(root), image_dir="img", label_dir="lbl", label_nc=4,
                            num_workers=0)
    with pytest.raises(ValueError, match=r"1 bad label map\(s\):\n  .*p9\.png: label ids \[255\].*"
                                         r"set contain_dontcare_label=True"):
        dm.setup("fit")
    ok = SemanticDataModule("custom", dataroot=str(root), image_dir="img", label_dir="lbl", label_nc=4,
                            contain_dontcare_label=True, load_size=20, crop_size=16, num_workers=0)
    ok.setup("fit")
    assert len(ok.train_set) == 7 and ok.layout.semantic_nc == 5
    skipped = SemanticDataModule("custom", dataroot=str(root), image_dir="img", label_dir="lbl", label_nc=4,
                                 validate_labels=False)
    skipped.setup("fit")  # no check: the error would only come when p9 is loaded


def test_cityscapes_datamodule(tmp_path):
    for phase, frames in (("train", (1, 2)), ("val", (3,))):
        for f in frames:
            stem = f"ulm_000000_{f:06d}"
            write_image(tmp_path / "leftImg8bit" / phase / "ulm" / f"{stem}_leftImg8bit.png", 16, 32)
            ids = np.random.default_rng(f).integers(0, 34, (16, 32))
            write_ids(tmp_path / "gtFine" / phase / "ulm" / f"{stem}_gtFine_labelIds.png", ids)
            write_ids(tmp_path / "gtFine" / phase / "ulm" / f"{stem}_gtFine_instanceIds.png", ids * 1000 + 1)
    dm = SemanticDataModule("cityscapes", dataroot=str(tmp_path), crop_size=16, batch_size=2, num_workers=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 8, 16) and batch["instance"].max() > 255
    assert len(dm.val_set) == 1 and dm.layout.semantic_nc == 36
    with pytest.raises(FileNotFoundError, match="leftImg8bit/test does not exist"):
        SemanticDataModule("cityscapes", dataroot=str(tmp_path), val_phase="test").setup("fit")


def test_yaml_friendly_arguments():
    parser = ArgumentParser()
    parser.add_class_arguments(SemanticDataModule, "data")
    cfg = parser.parse_args(["--data.dataset_mode=custom", "--data.label_nc=13", "--data.dataroot=/d",
                             "--data.image_dir=img", "--data.label_dir=lbl", "--data.no_flip=true"])
    dm = SemanticDataModule(**cfg.data.as_dict())
    assert dm.layout.label_nc == 13 and dm.hparams.no_flip and dm.hparams.dataroot == "/d"
    assert SemanticDataModule(**dm.hparams).layout.label_nc == 13
