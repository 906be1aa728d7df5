"""A procedural mask-to-image dataset: no files, deterministic, learnable in minutes.

Every image is a sky/ground scene with 1-4 shapes painted over it. Each class has its own
colour and texture, fixed across the dataset, so a generator can learn the mapping from
label map to appearance; a little per-image brightness shift and pixel noise keeps it from
being a lookup table. Each region (sky, ground, every shape) has its own instance id, so
touching shapes of one class are separated by the instance-edge channel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .io import save_image

__all__ = ["SHAPES_CLASSES", "SHAPES_LABEL_NC", "ShapesDataset", "main", "write_shapes"]

SHAPES_CLASSES = ("sky", "ground", "circle", "square", "triangle", "bar")
SHAPES_LABEL_NC = len(SHAPES_CLASSES)

# Per class: base colour (RGB in [0, 1]) and texture amplitude; the textures are in _textures.
_BASE = np.array([
    [0.45, 0.70, 0.95],  # sky: vertical gradient, lighter toward the horizon
    [0.35, 0.55, 0.20],  # ground: horizontal stripes, period 4 px
    [0.85, 0.20, 0.15],  # circle: diagonal gradient
    [0.95, 0.80, 0.20],  # square: 4 px checkerboard
    [0.55, 0.30, 0.75],  # triangle: diagonal stripes, period 6 px
    [0.85, 0.85, 0.85],  # bar: vertical stripes, period 3 px
], dtype=np.float32)


def _textures(height: int, width: int) -> np.ndarray:
    """Appearance of every class at every pixel, ``(classes, H, W, 3)`` float32."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = yy / max(height - 1, 1)
    diag = (xx + yy) / max(height + width - 2, 1)
    patterns = np.stack([
        0.25 * ramp - 0.1,
        0.08 * np.where((yy // 2) % 2 == 0, 1.0, -1.0),
        0.25 * diag - 0.12,
        0.12 * np.where(((yy // 4) + (xx // 4)) % 2 == 0, 1.0, -1.0),
        0.12 * np.where(((xx + yy) // 3) % 2 == 0, 1.0, -1.0),
        np.where(xx % 3 == 0, -0.35, 0.05),
    ])
    return (_BASE[:, None, None, :] + patterns[..., None]).astype(np.float32)


def _shape_mask(kind: int, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float,
                angle: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if kind == 2:  # circle
        return dy * dy + dx * dx <= r * r
    if kind == 3:  # square
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    if kind == 4:  # triangle, apex up, base 2r wide
        return (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)
    return np.abs(dx * np.sin(angle) - dy * np.cos(angle)) <= r / 3  # bar through the centre


class ShapesDataset(Dataset):
    """Synthetic label-map/image pairs generated on the fly from ``(seed, index)``.

    Classes are :data:`SHAPES_CLASSES` (``label_nc = SHAPES_LABEL_NC``, no don't-care id).

    Args:
        num_samples: dataset length.
        size: image size, an int for square images or ``(H, W)``.
        seed: the same ``(seed, index)`` always gives the same sample, in any process.
        with_instances: add an ``"instance"`` map (sky 0, ground 1, shapes 2, 3, ...).

    Returns (per item):
        ``{"image": (3, H, W) float in [-1, 1], "label": (H, W) long, "instance": (H, W) long,
        "name": str}``.

    Example:
        >>> sample = ShapesDataset(10, size=32)[3]
        >>> sample["image"].shape, sample["label"].dtype, int(sample["label"].max()) < SHAPES_LABEL_NC
        (torch.Size([3, 32, 32]), torch.int64, True)
    """

    def __init__(self, num_samples: int, *, size: int | tuple[int, int] = 64, seed: int = 0,
                 with_instances: bool = True) -> None:
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        if num_samples < 0 or min(height, width) < 8:
            raise ValueError(f"ShapesDataset: need num_samples >= 0 and size >= 8, got "
                             f"num_samples={num_samples}, size={size}")
        self.num_samples, self.size, self.seed = num_samples, (height, width), seed
        self.with_instances = with_instances
        self._textures = _textures(height, width).reshape(-1, 3)  # row = class * H * W + pixel
        self._pixels = np.arange(height * width).reshape(height, width)
        self._grid = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5

    def __len__(self) -> int:
        return self.num_samples

    def _layout(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Label and instance maps of one scene."""
        yy, xx = self._grid
        height, width = self.size
        ground = yy >= rng.uniform(0.3, 0.7) * height
        label = ground.astype(np.int64)
        instance = label.copy()
        for k in range(int(rng.integers(1, 5))):
            kind = int(rng.integers(2, SHAPES_LABEL_NC))
            cy, cx = rng.uniform(0.15, 0.85, size=2) * (height, width)
            r = rng.uniform(0.1, 0.22) * min(height, width)
            mask = _shape_mask(kind, yy, xx, cy, cx, r, rng.uniform(0, np.pi))
            label[mask], instance[mask] = kind, k + 2
        return label, instance

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"ShapesDataset index {index} out of range [0, {self.num_samples})")
        rng = np.random.default_rng([self.seed, index])
        label, instance = self._layout(rng)
        image = self._textures.take(label * self._pixels.size + self._pixels, axis=0)
        image += rng.standard_normal(image.shape, dtype=np.float32) * 0.03 + rng.uniform(-0.04, 0.04)
        image = np.clip(image, 0.0, 1.0).transpose(2, 0, 1) * 2.0 - 1.0
        sample: dict[str, Tensor | str] = {"image": torch.from_numpy(np.ascontiguousarray(image)),
                                           "label": torch.from_numpy(label),
                                           "name": f"shapes_{self.seed}_{index:06d}"}
        if self.with_instances:
            sample["instance"] = torch.from_numpy(instance)
        return sample


def write_shapes(labels_dir: str | Path, count: int, *, instances_dir: str | Path | None = None,
                 images_dir: str | Path | None = None, size: int = 64, seed: int = 1) -> list[Path]:
    """Write ``count`` shapes scenes as PNG label maps (and instance maps, photos) to try a model on.

    ``seed`` 1 gives scenes the demo never trained on (it trains on seed 0). Files are named
    ``shapes_<seed>_<index>.png`` in every folder, so instance maps pair with their labels.

    Example:
        >>> import tempfile
        >>> [p.name for p in write_shapes(tempfile.mkdtemp(), 2, size=16)]
        ['shapes_1_000000.png', 'shapes_1_000001.png']
    """
    folders = {"label": Path(labels_dir), "instance": instances_dir, "image": images_dir}
    written = []
    for sample in ShapesDataset(count, size=size, seed=seed):
        name = f"{sample['name']}.png"
        for key, folder in folders.items():
            if folder is None:
                continue
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if key == "image":
                save_image((sample["image"] + 1) / 2, path)
            else:
                Image.fromarray(sample[key].numpy().astype(np.uint8)).save(path)
        written.append(Path(labels_dir) / name)
    return written


def main(argv: list[str] | None = None) -> None:
    """``python -m models.data.shapes LABELS_DIR [--count N] [--instances DIR] [--images DIR]``."""
    parser = argparse.ArgumentParser(description="Write shapes scenes as PNG label maps (ids 0-5) to try a "
                                                 "trained demo model on.")
    parser.add_argument("labels", help="folder for the label maps")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--instances", help="also write the instance maps to this folder")
    parser.add_argument("--images", help="also write the real photos to this folder")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1, help="the demo trains on seed 0")
    args = parser.parse_args(argv)
    paths = write_shapes(args.labels, args.count, instances_dir=args.instances, images_dir=args.images,
                         size=args.size, seed=args.seed)
    print(f"wrote {len(paths)} label maps to {args.labels}")


if __name__ == "__main__":
    main()
