"""Masks in the editor: uploaded label files and painted canvases ↔ training ids.

An uploaded file is read through the label contract exactly as ``infer.py`` reads it
(:meth:`~models.data.label_layout.LabelLayout.read`), so the same file gives the same ids and
the same one-line errors; a colour mask (RGB) is read with the editor's palette, as
``infer.py --palette`` reads it with that palette file. A painted canvas is snapped to the
nearest class colour (brush edges blend colours), and transparent pixels (erased, never
painted) take the background class.

Example:
    >>> from models.data.label_layout import LabelLayout
    >>> from models.app.editor.classes import class_swatches
    >>> swatches = class_swatches(LabelLayout(3))
    >>> canvas = ids_to_canvas(torch.tensor([[0, 1], [2, 2]]), swatches)
    >>> canvas.shape, canvas_to_ids(canvas, swatches).tolist()
    ((2, 2, 4), [[0, 1], [2, 2]])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from models.data.label_layout import LabelLayout

from .classes import ClassSwatch, stored_palette

__all__ = ["canvas_to_ids", "ids_to_canvas", "mask_summary", "read_mask"]

_OPAQUE = 128  # alpha at or above which a canvas pixel counts as painted


def ids_to_canvas(ids: Tensor, swatches: Sequence[ClassSwatch]) -> np.ndarray:
    """Training ids ``(H, W)`` → an opaque ``(H, W, 4)`` uint8 RGBA canvas in the class colours."""
    table = np.array([(*s.rgb, 255) for s in swatches], dtype=np.uint8)
    return table[ids.cpu().numpy()]


def canvas_to_ids(canvas: np.ndarray, swatches: Sequence[ClassSwatch], background: int = 0) -> Tensor:
    """A painted ``(H, W, 3|4)`` uint8 canvas → training ids ``(H, W)``.

    Every pixel takes the class of the nearest swatch colour; pixels with alpha below 128 take
    ``background``.

    Example:
        >>> from models.data.label_layout import LabelLayout
        >>> from models.app.editor.classes import class_swatches
        >>> swatches = class_swatches(LabelLayout(3))          # black, dark red, dark green
        >>> blended = np.array([[[120, 10, 0, 255], [0, 0, 0, 0]]], dtype=np.uint8)
        >>> canvas_to_ids(blended, swatches, background=2).tolist()
        [[1, 2]]
    """
    if canvas.ndim != 3 or canvas.shape[2] not in (3, 4):
        raise ValueError(f"canvas: expected an (H, W, 3) or (H, W, 4) image, got shape {canvas.shape}")
    rgb = canvas[..., :3].astype(np.int64)
    used, where = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2], return_inverse=True)
    used_rgb = torch.from_numpy(np.stack([used >> 16, (used >> 8) & 255, used & 255], 1)).float()
    nearest = torch.cdist(used_rgb, torch.tensor([s.rgb for s in swatches], dtype=torch.float32)).argmin(1)
    # snap each colour used once (not each pixel): a big canvas with many classes stays cheap
    ids = torch.tensor([s.id for s in swatches])[nearest][torch.from_numpy(where.reshape(rgb.shape[:2]))]
    if canvas.shape[2] == 4:
        ids = ids.masked_fill(torch.from_numpy(canvas[..., 3] < _OPAQUE), background)
    return ids


def _holds_colours(path: Path) -> bool:
    """Whether ``path`` is an RGB(A) image whose channels differ (a colour mask, not ids)."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("RGB", "RGBA"):
                return False
            arr = np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return False  # the label reader says what is wrong with it
    return not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]))


def read_mask(path: str | Path, layout: LabelLayout, swatches: Sequence[ClassSwatch]) -> Tensor:
    """An uploaded label file → training ids ``(H, W)``, with ``infer.py``'s reader and errors.

    Files of ids read as the CLI reads them; colour masks (when the model records no palette of
    its own) read with the editor's palette, as the CLI reads them with that palette file.

    Raises:
        ImageReadError, ValueError, OSError: what ``infer.py`` raises for the same file.
    """
    path = Path(path)
    palette = None
    if layout.palette is None and _holds_colours(path):
        palette = stored_palette(layout, list(swatches))
    return layout.read(path, palette)


def mask_summary(ids: Tensor, swatches: Sequence[ClassSwatch]) -> str:
    """``"W×H mask of <class names>"``: what the editor says about a mask it read.

    Example:
        >>> from models.data.label_layout import LabelLayout
        >>> from models.app.editor.classes import class_swatches
        >>> mask_summary(torch.tensor([[0, 2, 2]]), class_swatches(LabelLayout(3)))
        'a 3×1 mask of class 0, class 2'
    """
    names = {s.id: s.name for s in swatches}
    present = ", ".join(names[i] for i in torch.unique(ids).tolist())
    return f"a {ids.shape[1]}×{ids.shape[0]} mask of {present}"
