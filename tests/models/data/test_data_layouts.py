import numpy as np
import pytest

from models.data.layouts import (
    find_ade20k,
    find_cityscapes,
    find_coco,
    find_custom,
    find_samples,
    natural_key,
)
from tests.models.data.data_files import write_ids, write_image, write_pair

IDS = np.zeros((6, 8), dtype=np.int64)


def test_custom_pairs_by_stem_in_natural_order(tmp_path):
    for name in ("img10", "img2", "img1"):
        write_pair(tmp_path, name, IDS, instance=IDS)
    samples = find_custom(tmp_path / "img", tmp_path / "lbl", tmp_path / "inst")
    assert [s.name for s in samples] == ["img1", "img2", "img10"]
    for s in samples:
        assert s.image.name == f"{s.name}.jpg" and s.label.name == f"{s.name}.png"
        assert s.instance is not None and s.instance.parent.name == "inst"
    assert find_custom(tmp_path / "img", tmp_path / "lbl")[0].instance is None


def test_custom_pairs_nested_folders_by_relative_path(tmp_path):
    write_pair(tmp_path, "a/x", IDS)
    write_pair(tmp_path, "b/x", IDS)
    samples = find_custom(tmp_path / "img", tmp_path / "lbl")
    assert [(s.name, s.image.parent.name, s.label.parent.name) for s in samples] == [
        ("a/x", "a", "a"), ("b/x", "b", "b")]


def test_custom_missing_partners_listed_on_each_side(tmp_path):
    write_pair(tmp_path, "both", IDS)
    write_image(tmp_path / "img" / "only_image.jpg")
    write_ids(tmp_path / "lbl" / "only_label.png", IDS)
    with pytest.raises(ValueError, match=r"1 image\(s\) have no label: \['only_image'\].*"
                                         r"1 label\(s\) have no image: \['only_label'\]"):
        find_custom(tmp_path / "img", tmp_path / "lbl")


def test_custom_missing_instance_and_many_unpaired(tmp_path):
    for i in range(13):
        write_image(tmp_path / "img" / f"x{i}.png")
    write_ids(tmp_path / "lbl" / "x0.png", IDS)
    with pytest.raises(ValueError, match=r"12 image\(s\) have no label: \['x1', 'x2', .*'x10'\] and 2 more"):
        find_custom(tmp_path / "img", tmp_path / "lbl")
    write_pair(tmp_path / "p", "a", IDS)
    write_pair(tmp_path / "p", "b", IDS, instance=IDS)
    with pytest.raises(ValueError, match=r"1 image\(s\) have no instance map: \['a'\]"):
        find_custom(tmp_path / "p" / "img", tmp_path / "p" / "lbl", tmp_path / "p" / "inst")


def test_custom_missing_empty_and_duplicate(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"image folder {tmp_path / 'nope'} does not exist"):
        find_custom(tmp_path / "nope", tmp_path / "lbl")
    (tmp_path / "empty").mkdir()
    write_pair(tmp_path, "a", IDS)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'empty'} holds no images"):
        find_custom(tmp_path / "img", tmp_path / "empty")
    write_image(tmp_path / "img" / "a.png")
    with pytest.raises(ValueError, match=r"share a name.*a\.jpg"):
        find_custom(tmp_path / "img", tmp_path / "lbl")


def test_ade20k_phase_selects_files(tmp_path):
    for phase, folder in (("train", "training"), ("val", "validation")):
        for i in (2, 1):
            stem = f"ADE_{phase}_{i:08d}"
            write_image(tmp_path / "images" / folder / f"{stem}.jpg")
            write_ids(tmp_path / "annotations" / folder / f"{stem}.png", IDS)
    train = find_ade20k(tmp_path, "train")
    assert [s.name for s in train] == ["ADE_train_00000001", "ADE_train_00000002"]
    assert all(s.image.suffix == ".jpg" and s.label.suffix == ".png" for s in train)
    assert [s.name for s in find_ade20k(tmp_path, "val")] == ["ADE_val_00000001", "ADE_val_00000002"]
    with pytest.raises(FileNotFoundError, match=r"found 0 '\*_test_\*.jpg'.*point dataroot"):
        find_ade20k(tmp_path, "test")
    with pytest.raises(ValueError, match="no instance maps"):
        find_ade20k(tmp_path, "train", use_instance=True)


def _cityscapes(root, phase, city, frames, *, instances=True):
    for frame in frames:
        stem = f"{city}_000000_{frame:06d}"
        write_image(root / "leftImg8bit" / phase / city / f"{stem}_leftImg8bit.png")
        write_ids(root / "gtFine" / phase / city / f"{stem}_gtFine_labelIds.png", IDS)
        write_ids(root / "gtFine" / phase / city / f"{stem}_gtFine_color.png", IDS)
        if instances:
            write_ids(root / "gtFine" / phase / city / f"{stem}_gtFine_instanceIds.png", IDS + 26000)


def test_cityscapes_layout(tmp_path):
    _cityscapes(tmp_path, "train", "aachen", [19, 3])
    _cityscapes(tmp_path, "train", "bochum", [7])
    _cityscapes(tmp_path, "val", "frankfurt", [1])
    samples = find_cityscapes(tmp_path, "train")
    assert [s.name for s in samples] == [
        "aachen_000000_000003", "aachen_000000_000019", "bochum_000000_000007"]
    assert samples[0].label.name.endswith("_gtFine_labelIds.png")
    assert samples[0].instance.name.endswith("_gtFine_instanceIds.png")
    assert find_cityscapes(tmp_path, "val", use_instance=False)[0].instance is None
    with pytest.raises(FileNotFoundError, match=r"image folder .*leftImg8bit/test does not exist"):
        find_cityscapes(tmp_path, "test")


def test_cityscapes_missing_instance_maps(tmp_path):
    _cityscapes(tmp_path, "train", "aachen", [1], instances=False)
    with pytest.raises(FileNotFoundError, match=r"no '\*_gtFine_instanceIds.png' files"):
        find_cityscapes(tmp_path, "train")
    assert len(find_cityscapes(tmp_path, "train", use_instance=False)) == 1


def test_coco_layout(tmp_path):
    for name in ("000000000139", "000000000285"):
        write_image(tmp_path / "val_img" / f"{name}.jpg")
        write_ids(tmp_path / "val_label" / f"{name}.png", IDS)
        write_ids(tmp_path / "val_inst" / f"{name}.png", IDS)
    samples = find_coco(tmp_path, "val")
    assert [s.name for s in samples] == ["000000000139", "000000000285"]
    assert samples[1].instance == tmp_path / "val_inst" / "000000000285.png"
    assert find_coco(tmp_path, "val", use_instance=False)[0].instance is None
    with pytest.raises(FileNotFoundError, match="train_img does not exist"):
        find_coco(tmp_path, "train")


def test_find_samples_dispatch_and_errors(tmp_path):
    write_pair(tmp_path, "a", IDS, instance=IDS)
    custom = find_samples("custom", dataroot=tmp_path, image_dir="img", label_dir="lbl", instance_dir="inst",
                          use_instance=True)
    assert custom[0].instance == tmp_path / "inst" / "a.png"
    assert find_samples("custom", dataroot=tmp_path, image_dir="img", label_dir="lbl",
                        instance_dir="inst")[0].instance is None
    with pytest.raises(ValueError, match="set both image_dir and label_dir"):
        find_samples("custom", dataroot=tmp_path, image_dir="img")
    with pytest.raises(ValueError, match="use_instance needs instance_dir"):
        find_samples("custom", image_dir=tmp_path / "img", label_dir=tmp_path / "lbl", use_instance=True)
    with pytest.raises(ValueError, match="unknown dataset_mode 'voc'; choose one of custom, ade20k"):
        find_samples("voc", dataroot=tmp_path)
    with pytest.raises(ValueError, match="coco: set dataroot"):
        find_samples("coco")


def test_natural_key():
    assert sorted(["b2", "a10", "a9", "A1"], key=natural_key) == ["A1", "a9", "a10", "b2"]
