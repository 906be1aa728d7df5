"""Content and style image folders for training arbitrary style transfer (e.g. MS-COCO + WikiArt).

Each training sample pairs a content image with a style image drawn at random, anew every
time, so an epoch is just a number of pairs and the pairing never repeats (pytorch-AdaIN's
infinite sampler). Images are scaled so the shorter side is ``load_size`` (the Lua original's
choice; the PyTorch port squashes to 512×512) and randomly cropped to ``crop_size``.
``synthetic=True`` generates small content and style folders in a temporary directory, for
tests and offline demos.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .io import ImageReadError, list_images, load_rgb, save_image
from .split_datamodule import SplitDataModule

__all__ = ["ContentStyleDataModule", "ContentStylePairs", "make_synthetic_folders"]


class ContentStylePairs(Dataset):
    """Pairs of (content, style) images as ``{"content": (3, h, w), "style": (3, h, w)}`` in [0, 1].

    Args:
        content_files: content image paths; sample ``i`` uses ``content_files[i % len]``.
        style_files: style image paths.
        transform: applied to each image separately (independent crops).
        length: samples per epoch (default: the number of content images).
        random_style: draw the style at random per sample; otherwise style ``i % len``.
        skip_corrupt: warn about an unreadable file (naming it) and draw another instead of failing.
    """

    def __init__(self, content_files: list[Path], style_files: list[Path],
                 transform: Callable[[Tensor], Tensor], *, length: int | None = None,
                 random_style: bool = True, skip_corrupt: bool = False) -> None:
        self.content_files, self.style_files = content_files, style_files
        self.transform = transform
        self.length = length if length is not None else len(content_files)
        self.random_style = random_style
        self.skip_corrupt = skip_corrupt

    def __len__(self) -> int:
        return self.length

    def _load(self, files: list[Path], index: int) -> Tensor:
        for _ in range(10):
            try:
                return self.transform(load_rgb(files[index]))
            except ImageReadError as err:
                if not self.skip_corrupt:
                    raise
                warnings.warn(f"skipping unreadable image: {err}", stacklevel=2)
                index = int(torch.randint(len(files), ()))
        raise ImageReadError(f"10 unreadable images in a row under {files[0].parent}; check the folder")

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        n_style = len(self.style_files)
        style_index = int(torch.randint(n_style, ())) if self.random_style else index % n_style
        return {"content": self._load(self.content_files, index % len(self.content_files)),
                "style": self._load(self.style_files, style_index)}


def _content_image(g: torch.Generator, h: int, w: int) -> Tensor:
    """A smooth gradient with a few coloured ellipses."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    low, high = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
    image = low + (high - low) * yy
    for _ in range(3):
        cy, cx, ry, rx = torch.rand(4, generator=g) * torch.tensor([1.0, 1.0, 0.3, 0.3]) + torch.tensor(
            [0.0, 0.0, 0.1, 0.1])
        inside = ((yy - cy) / ry).square() + ((xx - cx) / rx).square() <= 1
        image = torch.where(inside, torch.rand(3, 1, 1, generator=g), image)
    return image


def _style_image(g: torch.Generator, h: int, w: int) -> Tensor:
    """Two-colour stripes of random orientation and period, with grain."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    angle, period = float(torch.rand((), generator=g)) * math.pi, 4 + 12 * float(torch.rand((), generator=g))
    wave = torch.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) * 0.5 + 0.5
    a, b = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
    return (a + (b - a) * wave + 0.05 * torch.randn(3, h, w, generator=g)).clamp(0, 1)


def make_synthetic_folders(root: str | Path, *, num_content: int = 16, num_style: int = 8,
                           size: tuple[int, int] = (72, 96), seed: int = 0) -> tuple[Path, Path]:
    """Write procedural content (shapes on gradients) and style (stripes) PNGs under ``root``.

    Returns:
        ``(root/content, root/style)``.

    Example:
        >>> content, style = make_synthetic_folders(tempfile.mkdtemp(), num_content=2, num_style=1)
        >>> len(list_images(content)), len(list_images(style))
        (2, 1)
    """
    g = torch.Generator().manual_seed(seed)
    root = Path(root)
    for name, count, draw in (("content", num_content, _content_image), ("style", num_style, _style_image)):
        for i in range(count):
            save_image(draw(g, *size), root / name / f"{name}_{i:03d}.png")
    return root / "content", root / "style"


class ContentStyleDataModule(SplitDataModule):
    """Content/style folders (recursive, any common image type) for style-transfer training.

    Args:
        content_dir: folder of content images (e.g. MS-COCO train2014).
        style_dir: folder of style images (e.g. WikiArt).
        load_size: the shorter side is scaled to this (aspect kept) before cropping.
        crop_size: square training crop (random for training, centred for validation).
        batch_size: pairs per batch.
        num_workers: DataLoader worker processes.
        val_content_dir: validation content folder (default: the training content).
        val_style_dir: validation style folder (default: the training styles).
        num_val: validation pairs (fixed pairing; 0 disables validation).
        samples_per_epoch: training pairs per epoch (default: the number of content images).
        skip_corrupt: warn about unreadable files and use others instead of stopping.
        synthetic: generate a small procedural dataset in a temporary folder (no dirs needed).
        seed: seed of the synthetic images.

    Example:
        >>> dm = ContentStyleDataModule(synthetic=True, load_size=40, crop_size=32, batch_size=2,
        ...                             num_workers=0)
        >>> dm.setup("fit")
        >>> batch = next(iter(dm.train_dataloader()))
        >>> batch["content"].shape, batch["style"].shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 3, 32, 32]))
    """

    def __init__(self, content_dir: str | None = None, style_dir: str | None = None, *, load_size: int = 512,
                 crop_size: int = 256, batch_size: int = 8, num_workers: int = 4,
                 val_content_dir: str | None = None, val_style_dir: str | None = None, num_val: int = 8,
                 samples_per_epoch: int | None = None, skip_corrupt: bool = False, synthetic: bool = False,
                 seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not 0 < crop_size <= load_size:
            raise ValueError(f"need 0 < crop_size <= load_size, got crop_size={crop_size}, "
                             f"load_size={load_size}")
        if synthetic and (content_dir or style_dir):
            raise ValueError("synthetic=True generates its own folders; leave content_dir and "
                             "style_dir unset")
        if not synthetic and not (content_dir and style_dir):
            raise ValueError("set content_dir and style_dir (or synthetic=True for a generated demo set)")
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _transform(self, train: bool) -> v2.Compose:
        hp = self.hparams
        crop = v2.RandomCrop(hp.crop_size) if train else v2.CenterCrop(hp.crop_size)
        return v2.Compose([v2.Resize(hp.load_size, antialias=True), crop])

    def setup(self, stage: str | None = None) -> None:
        """List the images (generating them first when ``synthetic``)."""
        if self.train_set is not None:
            return
        hp = self.hparams
        content_dir, style_dir = hp.content_dir, hp.style_dir
        if hp.synthetic:
            size = (hp.load_size + hp.load_size // 8, hp.load_size + hp.load_size // 2)
            content_dir, style_dir = make_synthetic_folders(tempfile.mkdtemp(prefix="condnorm_styles_"),
                                                            size=size, seed=hp.seed)
        content, style = list_images(content_dir), list_images(style_dir)
        self.train_set = ContentStylePairs(content, style, self._transform(True), length=hp.samples_per_epoch,
                                           skip_corrupt=hp.skip_corrupt)
        if hp.num_val:
            val_content = list_images(hp.val_content_dir) if hp.val_content_dir else content
            val_style = list_images(hp.val_style_dir) if hp.val_style_dir else style
            self.val_set = ContentStylePairs(val_content, val_style, self._transform(False),
                                             length=min(hp.num_val, len(val_content)), random_style=False)
