"""Writers for tiny image / label files used by the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_image(path: Path, height: int = 20, width: int = 24, seed: int = 0) -> Path:
    """A random RGB image (JPEG or PNG by suffix)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def write_ids(path: Path, ids: np.ndarray | torch.Tensor) -> Path:
    """Single-channel PNG of ids (8-bit when they fit, else 16-bit like Cityscapes instance maps)."""
    arr = np.asarray(ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr.astype(np.uint8) if arr.max() < 256 else arr.astype(np.uint16))
    img.save(path)
    return path


def write_pair(root: Path, name: str, ids: np.ndarray, *, image_suffix: str = ".jpg",
               instance: np.ndarray | None = None) -> None:
    """``root/img/<name>``, ``root/lbl/<name>.png`` (and ``root/inst/<name>.png``) of one size."""
    height, width = ids.shape
    write_image(root / "img" / f"{name}{image_suffix}", height, width)
    write_ids(root / "lbl" / f"{name}.png", ids)
    if instance is not None:
        write_ids(root / "inst" / f"{name}.png", instance)


def read_images(folder: Path) -> dict[str, np.ndarray]:
    """Every image in ``folder`` by file name, as int16 arrays (so differences of 8-bit pixels do not wrap)."""
    return {p.name: np.asarray(Image.open(p), dtype=np.int16) for p in sorted(folder.iterdir())}
