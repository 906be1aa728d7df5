"""Image and label-map I/O shared by training, inference and export.

Every reader names the file in its error and says how to fix the problem; images of any
PIL mode (RGBA, greyscale, palette, 16-bit) come back as RGB float tensors in [0, 1].
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.utils import make_grid
from torchvision.utils import save_image as _tv_save_image

from .palette import Palette, rgb_to_ids

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "image_size",
    "list_images",
    "load_label",
    "load_rgb",
    "save_grid",
    "save_image",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An image or label file could not be read; the message names the file and the fix."""


def list_images(folder: str | Path, *, recursive: bool = True,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under ``folder``, sorted; raises if the folder is missing or empty.

    Example:
        >>> list_images("/nonexistent")
        Traceback (most recent call last):
        ...
        FileNotFoundError: image folder /nonexistent does not exist; check the path in your config
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist; check the path in your config")
    pattern = root.rglob("*") if recursive else root.glob("*")
    files = sorted(p for p in pattern if p.suffix.lower() in extensions and p.is_file())
    if not files:
        raise FileNotFoundError(f"image folder {root} holds no images with extensions "
                                f"{', '.join(extensions)}")
    return files


def _open(path: Path, *, load: bool = True) -> Image.Image:
    """Open (and decode, with ``load``) an image; every failure names the file and the fix.

    Images over ``PIL.Image.MAX_IMAGE_PIXELS`` are refused (PIL itself only warns up to twice
    that size and decodes them), which the header reveals before any pixel is decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            if load:
                img.load()
    except FileNotFoundError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(f"{path}: image is too large to decode safely ({err}); "
                             "resize it or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        size = path.stat().st_size if path.exists() else 0
        what = "is empty (0 bytes)" if size == 0 else f"is not a readable image ({err})"
        raise ImageReadError(f"{path}: {what}; re-export or remove the file") from err
    return img


def image_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, without decoding the pixels.

    Raises:
        FileNotFoundError: if the file does not exist.
        ImageReadError: if the file is empty, not an image, or a decompression bomb.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> Image.new("RGB", (40, 30)).save(path)
        >>> image_size(path)
        (30, 40)
    """
    with _open(Path(path), load=False) as img:
        return img.height, img.width


def _to_array(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to an HxWx3 float array in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        arr = arr / (65535.0 if arr.max(initial=0) > 255 else 255.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def load_rgb(path: str | Path) -> Tensor:
    """Read an image as an RGB float tensor ``(3, H, W)`` in [0, 1].

    Greyscale is replicated, transparency is composited on white, palette images are
    expanded and 16-bit images are scaled by 65535.

    Raises:
        FileNotFoundError: if the file does not exist.
        ImageReadError: if the file is empty, truncated, not an image, or a decompression bomb.
    """
    arr = _to_array(_open(Path(path)))
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def load_label(path: str | Path, palette: Palette | None = None) -> Tensor:
    """Read a label map of class ids as a ``(H, W)`` long tensor.

    Accepts single-channel 8/16-bit PNGs and palette PNGs (the palette index is the id).
    With ``palette`` (``{id: (r, g, b)}``, see :func:`models.data.palette.load_palette`) the
    file is read as colours instead and each colour is mapped to its id.

    Raises:
        ImageReadError: if the file is unreadable, or holds colours (RGB) instead of ids and no
            ``palette`` is given; the message says to convert colour masks with a palette file.
        ValueError: with ``palette``, if the mask holds colours the palette lacks (listed).
    """
    path = Path(path)
    img = _open(path)
    if palette is not None:
        return rgb_to_ids(img, palette, name=str(path))
    if img.mode in ("RGB", "RGBA"):
        arr = np.asarray(img.convert("RGB"))
        if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
            raise ImageReadError(
                f"{path}: label map is stored as RGB colours, not class ids; save it as a "
                "single-channel (L or P mode) PNG of ids, or pass a palette file that maps "
                "colours to ids")
        arr = arr[..., 0]
    elif img.mode in ("L", "P", "I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
    else:
        arr = np.asarray(img.convert("L"))
    return torch.from_numpy(arr.astype(np.int64))


def save_image(image: Tensor, path: str | Path) -> Path:
    """Save a ``(3, H, W)`` tensor in [0, 1] (clamped) as an image file; creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _tv_save_image(image.detach().float().clamp(0, 1).cpu(), path)
    return path


def save_grid(rows: Iterable[Tensor], path: str | Path, *, padding: int = 2) -> Path:
    """Save columns of images side by side, one sample per row.

    Args:
        rows: tensors ``(N, 3, H, W)`` in [0, 1], one per column (e.g. label │ fake │ real);
            all with the same N, H and W.
        path: output file.
        padding: pixels between tiles.

    Example:
        >>> import tempfile, os
        >>> a, b = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
        >>> out = save_grid([a, b], os.path.join(tempfile.mkdtemp(), "grid.png"))
        >>> out.suffix
        '.png'
    """
    columns = list(rows)
    tiles = torch.stack([c.detach().float().cpu() for c in columns], dim=1).flatten(0, 1)
    grid = make_grid(tiles.clamp(0, 1), nrow=len(columns), padding=padding, pad_value=1.0)
    return save_image(grid, path)
