import time

import numpy as np
import pytest
import torch

from models.data.semantic_input import instance_edges
from models.data.shapes import SHAPES_CLASSES, SHAPES_LABEL_NC, ShapesDataset


def test_sample_format():
    ds = ShapesDataset(5, size=(24, 40), seed=3)
    sample = ds[2]
    assert set(sample) == {"image", "label", "instance", "name"}
    assert sample["image"].shape == (3, 24, 40) and sample["image"].dtype == torch.float32
    assert sample["label"].shape == sample["instance"].shape == (24, 40)
    assert sample["label"].dtype == sample["instance"].dtype == torch.int64
    assert -1.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    assert sample["name"] == "shapes_3_000002"
    assert "instance" not in ShapesDataset(1, with_instances=False)[0]
    assert len(ds) == 5 and SHAPES_LABEL_NC == len(SHAPES_CLASSES) == 6


def test_deterministic_from_seed_and_index():
    a, b = ShapesDataset(10, size=32, seed=1), ShapesDataset(10, size=32, seed=1)
    for key in ("image", "label", "instance"):
        assert torch.equal(a[7][key], b[7][key])
        assert torch.equal(a[7][key], a[7][key])
    assert not torch.equal(a[7]["image"], a[6]["image"])
    assert not torch.equal(a[7]["image"], ShapesDataset(10, size=32, seed=2)[7]["image"])


def test_layout_rules():
    ds = ShapesDataset(200, size=32, seed=0)
    shape_counts = set()
    for i in range(len(ds)):
        label, instance = ds[i]["label"], ds[i]["instance"]
        assert 0 <= int(label.min()) and int(label.max()) < SHAPES_LABEL_NC
        sky_rows, ground_rows = (torch.nonzero(label == c)[:, 0] for c in (0, 1))
        if sky_rows.numel() and ground_rows.numel():  # sky above the horizon, ground below
            assert int(sky_rows.max()) < int(ground_rows.min())
        ids = torch.unique(instance).tolist()
        for inst in ids:  # an instance never spans two classes
            assert torch.unique(label[instance == inst]).numel() == 1
        shapes = [inst for inst in ids if inst >= 2]
        assert 1 <= len(shapes) and max(shapes) <= 5  # 1-4 shapes, ids 2..5
        shape_counts.add(max(shapes) - 1)
    assert shape_counts == {1, 2, 3, 4}
    edges = instance_edges(torch.stack([ds[i]["instance"] for i in range(8)]))
    assert 0.02 < float(edges.mean()) < 0.5


def test_each_class_has_its_own_consistent_appearance():
    ds = ShapesDataset(40, size=64, seed=5)
    images = np.stack([ds[i]["image"].numpy() for i in range(len(ds))])
    labels = np.stack([ds[i]["label"].numpy() for i in range(len(ds))])
    a, b = images[:-1], images[1:]  # consecutive pairs, compared pixel by pixel
    la, lb = labels[:-1], labels[1:]
    diff = np.abs(a - b).mean(1)
    for c in range(SHAPES_LABEL_NC):
        same = (la == c) & (lb == c)
        assert same.sum() > 100, SHAPES_CLASSES[c]
        # same class, same position: only noise and brightness differ
        assert float(diff[same].mean()) < 0.15, SHAPES_CLASSES[c]
        for other in range(SHAPES_LABEL_NC):
            cross = (la == c) & (lb == other)
            if other != c and cross.sum() > 50:
                assert float(diff[cross].mean()) > 0.25, (SHAPES_CLASSES[c], SHAPES_CLASSES[other])


def test_per_image_noise_differs_between_same_layout_pixels():
    image = ShapesDataset(1, size=64, seed=0)[0]["image"]
    label = ShapesDataset(1, size=64, seed=0)[0]["label"]
    sky = image[:, label == 0]
    assert float(sky.std(1).mean()) > 0.02  # texture + noise, not a flat colour


def test_fast_generation():
    ds = ShapesDataset(1000, size=64)
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    assert time.perf_counter() - start < 3.0


def test_errors():
    with pytest.raises(IndexError, match="out of range"):
        ShapesDataset(3)[3]
    with pytest.raises(ValueError, match="size >= 8"):
        ShapesDataset(3, size=4)
    assert len(ShapesDataset(0)) == 0
