import numpy as np
import pytest
import torch
from PIL import Image

from models.data.io import ImageReadError
from models.data.label_layout import LabelLayout, check_label_ids, remap_ids
from models.data.layouts import find_custom
from models.data.semantic import PairedSemanticDataset
from models.data.transforms import PairedTransform
from tests.models.data.data_files import write_ids, write_image, write_pair

SMALL = PairedTransform("resize_and_crop", load_size=20, crop_size=16)


def _ids(seed=0, high=4, shape=(18, 22)):
    return np.random.default_rng(seed).integers(0, high, shape)


def _dataset(root, *, transform=SMALL, instance_dir=None, palette=None, **layout):
    return PairedSemanticDataset(find_custom(root / "img", root / "lbl", instance_dir),
                                 LabelLayout.with_palette(palette, **layout), transform=transform)


def test_sample_dict(tmp_path):
    for i in range(3):
        write_pair(tmp_path, f"s{i}", _ids(i), instance=_ids(i + 10, 300))
    ds = _dataset(tmp_path, label_nc=4, use_instance=True, instance_dir=tmp_path / "inst")
    sample = ds[1]
    assert set(sample) == {"image", "label", "instance", "name"} and sample["name"] == "s1"
    assert sample["image"].shape == (3, 16, 16) and sample["image"].dtype == torch.float32
    assert -1.0 <= float(sample["image"].min()) < 0 < float(sample["image"].max()) <= 1.0
    assert sample["label"].shape == sample["instance"].shape == (16, 16)
    assert sample["label"].dtype == sample["instance"].dtype == torch.int64
    assert set(sample["instance"].unique().tolist()) <= set(_ids(11, 300).ravel().tolist())
    no_inst = _dataset(tmp_path, label_nc=4)[1]
    assert "instance" not in no_inst and len(ds) == 3


def test_image_values_without_augmentation(tmp_path):
    write_pair(tmp_path, "a", _ids(0), image_suffix=".png")
    fixed = PairedTransform("fixed", crop_size=22, aspect_ratio=22 / 18, flip=False)
    ds = _dataset(tmp_path, label_nc=4, transform=fixed)
    expected = torch.from_numpy(np.array(Image.open(tmp_path / "img" / "a.png"))).permute(2, 0, 1) / 255
    assert torch.allclose(ds[0]["image"], expected * 2 - 1, atol=1e-6)
    assert torch.equal(ds[0]["label"], torch.from_numpy(_ids(0)))


def test_remap_ids():
    raw = torch.tensor([0, 1, 5, 150, 255])
    assert remap_ids(raw, dataset_mode="ade20k", label_nc=150, contain_dontcare_label=True).tolist() == [
        150, 0, 4, 149, 150]
    assert remap_ids(raw, dataset_mode="coco", label_nc=182, contain_dontcare_label=True).tolist() == [
        0, 1, 5, 150, 182]
    assert remap_ids(raw, dataset_mode="custom", label_nc=182, contain_dontcare_label=False).tolist() == [
        0, 1, 5, 150, 255]
    assert raw.tolist() == [0, 1, 5, 150, 255]  # input untouched


def test_ade20k_and_dontcare_in_dataset(tmp_path):
    ids = np.array([[0, 1, 2], [150, 255, 3]])
    write_pair(tmp_path, "a", ids)
    fixed = PairedTransform("fixed", crop_size=3, aspect_ratio=1.5, flip=False)
    ade = _dataset(tmp_path, label_nc=150, contain_dontcare_label=True, dataset_mode="ade20k",
                   transform=fixed)
    assert ade[0]["label"].tolist() == [[150, 0, 1], [149, 150, 2]]
    coco = _dataset(tmp_path, label_nc=182, contain_dontcare_label=True, dataset_mode="coco", transform=fixed)
    assert coco[0]["label"].tolist() == [[0, 1, 2], [150, 182, 3]]


def test_label_out_of_range_names_file_and_ids(tmp_path):
    write_pair(tmp_path, "bad", np.array([[0, 1], [9, 255]]))
    ds = _dataset(tmp_path, label_nc=4)
    with pytest.raises(ValueError, match=r"bad\.png: label ids \[9, 255\] are outside \[0, 4\) \(label_nc=4, "
                                         r"contain_dontcare_label=False\)\. Fix: set label_nc.*"
                                         r"set contain_dontcare_label=True.*palette file"):
        ds[0]
    with pytest.raises(ValueError, match=r"label ids \[9\] are outside \[0, 5\)"):
        _dataset(tmp_path, label_nc=4, contain_dontcare_label=True)[0]
    assert _dataset(tmp_path, label_nc=10, contain_dontcare_label=True).read_label(0).max() == 10


def test_check_label_ids_hints():
    with pytest.raises(ValueError, match=r"x: label ids \[-1\]") as info:
        check_label_ids(torch.tensor([-1, 2]), "x", label_nc=3, contain_dontcare_label=False)
    assert "contain_dontcare_label=True" not in str(info.value)
    with pytest.raises(ValueError, match=r"\[3, 4, .*22\] and 5 more"):
        check_label_ids(torch.arange(28), "x", label_nc=3, contain_dontcare_label=False)
    check_label_ids(torch.tensor([0, 3]), "x", label_nc=3, contain_dontcare_label=True)


def test_rgb_mask_error_and_palette(tmp_path):
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    ids = _ids(3, 3)
    write_image(tmp_path / "img" / "a.jpg", *ids.shape)
    (tmp_path / "lbl").mkdir()
    Image.fromarray(colours[ids]).save(tmp_path / "lbl" / "a.png")
    with pytest.raises(ImageReadError, match=r"a\.png: label map is stored as RGB colours.*palette file"):
        _dataset(tmp_path, label_nc=3)[0]
    palette = {i: tuple(int(v) for v in c) for i, c in enumerate(colours)}
    fixed = PairedTransform("fixed", crop_size=22, aspect_ratio=22 / 18, flip=False)
    assert torch.equal(_dataset(tmp_path, label_nc=3, palette=palette, transform=fixed)[0]["label"],
                       torch.from_numpy(ids))
    with pytest.raises(ValueError, match=r"a\.png: 1 colour\(s\) are not in the palette: \[0, 0, 255\]"):
        _dataset(tmp_path, label_nc=3, palette={0: (0, 0, 0), 1: (255, 0, 0)})[0]


def test_validate_lists_bad_files_and_stops_after_max(tmp_path):
    write_pair(tmp_path, "good", _ids(0))
    for i in range(12):
        write_pair(tmp_path, f"bad{i:02d}", _ids(i) + 7)
    (tmp_path / "lbl" / "bad00.png").write_bytes(b"")
    ds = _dataset(tmp_path, label_nc=4)
    with pytest.raises(ValueError, match=r"10 bad label map\(s\) \(stopped after 10\)") as info:
        ds.validate(progress=False)
    message = str(info.value)
    assert "bad00.png: is empty (0 bytes)" in message
    assert "bad01.png: label ids [7, 8, 9, 10]" in message and "bad09.png" in message
    assert "bad10.png" not in message and "good.png" not in message
    with pytest.raises(ValueError, match=r"^1 bad label map\(s\):\n  .*bad00\.png"):
        _dataset(tmp_path, label_nc=20).validate(progress=False)


def test_size_mismatch_and_missing_instance(tmp_path):
    write_image(tmp_path / "img" / "a.jpg", 10, 12)
    write_ids(tmp_path / "lbl" / "a.png", np.zeros((10, 13)))
    with pytest.raises(ValueError, match=r"a\.png: size \(10, 13\) differs from its image .*a\.jpg \(10, 12"):
        _dataset(tmp_path, label_nc=2)[0]
    with pytest.raises(ValueError, match=r"use_instance=True but 1 sample\(s\) have no instance map"):
        _dataset(tmp_path, label_nc=2, use_instance=True)
    with pytest.raises(ValueError, match="no samples given"):
        PairedSemanticDataset([], LabelLayout(2))
