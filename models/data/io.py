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
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError
from torch import Tensor
from torchvision.utils import make_grid
from torchvision.utils import save_image as _tv_save_image

from models.weights import atomic_write

from .palette import Palette, rgb_to_ids

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "image_size",
    "list_images",
    "load_label",
    "load_rgb",
    "output_paths",
    "refuse_collisions",
    "save_grid",
    "save_image",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
OUTPUT_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff")
_LOSSY_FORMATS = ("JPEG", "MPO")  # label files must keep every id exactly
_EXIF_ORIENTATION = 0x0112


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
                if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:  # camera photos: upright, as viewers show
                    stored_format, img = img.format, ImageOps.exif_transpose(img)
                    img.format = stored_format
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
        turned = img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)  # rotated by 90°: H and W swap
        return (img.width, img.height) if turned else (img.height, img.width)


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

    Accepts lossless single-channel files: 8/16-bit PNG/BMP/integer TIFF, palette PNGs (the
    palette index is the id) and 1-bit masks (read as ids 0 and 1). With ``palette``
    (``{id: (r, g, b)}``, see :func:`models.data.palette.load_palette`) the file is read as
    colours instead and each colour is mapped to its id.

    Raises:
        ImageReadError: if the file is unreadable, lossy (JPEG blends neighbouring ids into
            invented ones), floating-point (ids must be integers), or holds colours (RGB)
            instead of ids and no ``palette`` is given; the message says how to fix it.
        ValueError: with ``palette``, if the mask holds colours the palette lacks (listed).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "mask.png")
        >>> Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1").save(path)
        >>> load_label(path)
        tensor([[0, 1]])
    """
    path = Path(path)
    img = _open(path)
    if img.format in _LOSSY_FORMATS:
        raise ImageReadError(f"{path}: label maps must be stored losslessly, but this is a {img.format} file "
                             "(its compression blends neighbouring ids into ids that were never drawn); "
                             "export the mask as PNG")
    if img.mode == "F" or img.mode.startswith("I;16F"):
        raise ImageReadError(f"{path}: label map holds floating-point values; ids must be integers: save "
                             "it as an 8- or 16-bit integer PNG/TIFF")
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
    elif img.mode == "1":  # 1-bit masks: ids 0 and 1 (not the 0/255 of an 8-bit view)
        arr = np.asarray(img, dtype=bool)
    elif img.mode in ("L", "P", "I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
    else:
        arr = np.asarray(img.convert("L"))
    return torch.from_numpy(arr.astype(np.int64))


def save_image(image: Tensor, path: str | Path) -> Path:
    """Save a ``(3, H, W)`` tensor in [0, 1] (clamped) as an image file, atomically; creates the folder.

    The pixels go to a hidden temporary file beside ``path`` that is renamed over it, so an
    interrupted run never leaves a truncated image under the final name.

    Raises:
        ValueError: if the tensor holds NaN or Inf (it would be written as a black image).
    """
    path = Path(path)
    if not bool(torch.isfinite(image).all()):
        raise ValueError(f"{path}: refusing to write an image with NaN/Inf pixels")
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: unknown image type {path.suffix!r}; use one of {', '.join(OUTPUT_EXTENSIONS)}")
    pixels = image.detach().float().clamp(0, 1).cpu()
    atomic_write(path, lambda f: _tv_save_image(pixels, f, format=image_format))
    return path


def output_paths(inputs: Sequence[Path], root: Path | None, out_dir: Path, ext: str,
                 suffix: str = "") -> list[Path]:
    """One output file per input, named after it and unique by construction.

    Inputs under the folder ``root`` keep their relative folders (``root/a/x.png`` →
    ``out_dir/a/x{suffix}.{ext}``), so files of one name in different folders do not collide;
    inputs given one by one are named by their stem. Two inputs that would still map to one
    output (``x.png`` and ``x.bmp``) are refused before any work starts.

    Raises:
        ValueError: naming the clashing inputs, or an unknown ``ext``.

    Example:
        >>> [p.as_posix() for p in output_paths([Path("m/a/x.png"), Path("m/b/x.png")], Path("m"),
        ...                                     Path("out"), "jpg")]
        ['out/a/x.jpg', 'out/b/x.jpg']
    """
    ext = ext.lower().lstrip(".")
    if ext not in OUTPUT_EXTENSIONS:
        raise ValueError(f"--ext {ext!r}: choose one of {', '.join(OUTPUT_EXTENSIONS)}")
    relative = [path.relative_to(root).parent if root is not None else Path() for path in inputs]
    return refuse_collisions([(out_dir / rel / f"{path.stem}{suffix}.{ext}", str(path))
                              for rel, path in zip(relative, inputs)])


def refuse_collisions(targets: Sequence[tuple[Path, str]]) -> list[Path]:
    """The output paths of ``(output, made from)`` pairs; raise if two inputs would write one file.

    Example:
        >>> refuse_collisions([(Path("o/a.png"), "c1/a.png"), (Path("o/a.png"), "c2/a.jpg")])
        Traceback (most recent call last):
        ...
        ValueError: c1/a.png and c2/a.jpg would both be written to o/a.png; rename one of them or run them separately
    """
    seen: dict[Path, str] = {}
    for target, source in targets:
        if target in seen:
            raise ValueError(f"{seen[target]} and {source} would both be written to {target}; rename one of them "
                             "or run them separately")
        seen[target] = source
    return [target for target, _ in targets]


def save_grid(rows: Iterable[Tensor], path: str | Path, *, padding: int = 2,
              titles: Sequence[str] | None = None) -> Path:
    """Save columns of images side by side, one sample per row.

    Args:
        rows: tensors ``(N, 3, H, W)`` in [0, 1], one per column (e.g. label │ fake │ real);
            all with the same N, H and W.
        path: output file.
        padding: pixels between tiles.
        titles: one caption per column, written in a white strip above the grid (clipped to
            the column's width).

    Example:
        >>> import tempfile, os
        >>> a, b = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
        >>> out = save_grid([a, b], os.path.join(tempfile.mkdtemp(), "grid.png"))
        >>> out.suffix
        '.png'
        >>> titled = save_grid([a, b], os.path.join(tempfile.mkdtemp(), "grid.png"), titles=["mask", "fake"])
        >>> Image.open(titled).size                      # 2 tiles of 8 px + 3 paddings each way, 14 px of titles
        (22, 36)
    """
    columns = list(rows)
    if titles is not None and len(titles) != len(columns):
        raise ValueError(f"save_grid: {len(titles)} title(s) for {len(columns)} column(s)")
    tiles = torch.stack([c.detach().float().cpu() for c in columns], dim=1).flatten(0, 1)
    grid = make_grid(tiles.clamp(0, 1), nrow=len(columns), padding=padding, pad_value=1.0)
    if titles is not None:
        grid = torch.cat([_title_strip(titles, columns[0].shape[-1], padding, grid.shape[-1]), grid], dim=1)
    return save_image(grid, path)


_TITLE_HEIGHT = 14


def _title_strip(titles: Sequence[str], tile_width: int, padding: int, width: int) -> Tensor:
    """A white ``(3, 14, width)`` strip with each title left-aligned over its column, in black."""
    strip = Image.new("RGB", (width, _TITLE_HEIGHT), "white")
    for i, title in enumerate(titles):
        column = Image.new("RGB", (tile_width, _TITLE_HEIGHT), "white")
        ImageDraw.Draw(column).text((1, 1), title, fill="black")
        strip.paste(column, (padding + i * (tile_width + padding), 0))
    return torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).float() / 255
