"""Colour palettes: id maps to colours for sample grids, and colour masks back to ids.

Two directions, one module:

* :func:`colorize_labels` paints class ids with a fixed, distinct palette (:func:`palette_colors`,
  the bit-interleaved scheme popularised by PASCAL VOC) so label maps can sit beside images in a grid.
* :func:`load_palette` + :func:`rgb_to_ids` turn colour-coded masks (the usual cause of "index out
  of range" errors when a mask is read as ids) into class ids, listing every colour the palette
  does not know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from condnorm._check import check_ids, check_shape

__all__ = ["Palette", "colorize_labels", "load_palette", "palette_colors", "rgb_to_ids"]

Palette = Mapping[int, tuple[int, int, int]]
RGBInput = Union[Tensor, Image.Image]  # noqa: UP007 (runtime alias)


def palette_colors(num_classes: int) -> Tensor:
    """A fixed palette of ``num_classes`` distinct colours, ``(num_classes, 3)`` uint8.

    Class ``i`` takes its colour from the bits of ``i``, interleaved over R, G and B from the
    most significant bit down, so every id up to 2**24 gets its own colour and neighbouring
    ids differ strongly.

    Example:
        >>> palette_colors(4).tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    """
    ids = np.arange(num_classes, dtype=np.int64)
    colors = np.zeros((num_classes, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            colors[:, channel] |= ((ids >> (3 * shift + channel)) & 1) << (7 - shift)
    return torch.from_numpy(colors.astype(np.uint8))


def colorize_labels(ids: Tensor, num_classes: int) -> Tensor:
    """Paint a batch of id maps with :func:`palette_colors`.

    Args:
        ids: ``(N, H, W)`` integer ids in ``[0, num_classes)`` (include the don't-care id).
        num_classes: number of ids the palette must cover.

    Returns:
        ``(N, 3, H, W)`` float colours in [0, 1], on ``ids``' device.

    Raises:
        ValueError: if ``ids`` is not 3-d or holds ids outside ``[0, num_classes)``.

    Example:
        >>> colorize_labels(torch.tensor([[[0, 1]]]), 2)[0, :, 0, 1]
        tensor([0.5020, 0.0000, 0.0000])
    """
    check_shape(ids, ("N", "H", "W"), "colorize_labels ids")
    check_ids(ids, num_classes, "colorize_labels ids")
    table = palette_colors(num_classes).to(ids.device, torch.float32) / 255.0
    return table[ids.long()].permute(0, 3, 1, 2)


def _parse_color(values: object, where: str) -> tuple[int, int, int]:
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        raise ValueError(f"{where}: expected a colour [r, g, b], got {values!r}")
    try:
        rgb = tuple(int(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: colour {values!r} must hold three integers 0-255") from err
    if any(not 0 <= v <= 255 for v in rgb):
        raise ValueError(f"{where}: colour {list(rgb)} has a channel outside 0-255")
    return rgb  # type: ignore[return-value]


def _palette_entries(path: Path) -> list[tuple[int, object, str]]:
    """Raw ``(id, colour, where)`` entries from a JSON or ``id r g b`` text palette file."""
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); expected {{\"id\": [r, g, b], ...}}") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object {{\"id\": [r, g, b], ...}}")
        items = [(key, value, f"{path}: id {key!r}") for key, value in data.items()]
    else:
        items = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            fields = line.split("#", 1)[0].replace(",", " ").split()
            if not fields:
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{lineno}: expected 'id r g b', got {line.strip()!r}")
            items.append((fields[0], fields[1:], f"{path}:{lineno}"))
    entries = []
    for key, value, where in items:
        try:
            entries.append((int(key), value, where))
        except ValueError as err:
            raise ValueError(f"{where}: the id must be an integer") from err
    return entries


def load_palette(path: str | Path) -> dict[int, tuple[int, int, int]]:
    r"""Read a palette file mapping class ids to colours.

    Two formats: JSON ``{"0": [0, 0, 0], "1": [128, 64, 128]}`` (``.json`` suffix), or text
    with one ``id r g b`` per line (commas allowed, ``#`` starts a comment).

    Returns:
        ``{id: (r, g, b)}``.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: on a malformed entry (the file and line are named), a repeated id, or
            one colour given to two ids (the mask would be ambiguous).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "palette.txt")
        >>> _ = open(path, "w").write("0 0 0 0  # background\n1 255 0 0\n")
        >>> load_palette(path)
        {0: (0, 0, 0), 1: (255, 0, 0)}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"palette file {path} does not exist; check the path in your config")
    palette: dict[int, tuple[int, int, int]] = {}
    owner: dict[tuple[int, int, int], int] = {}
    for class_id, value, where in _palette_entries(path):
        rgb = _parse_color(value, where)
        if class_id < 0:
            raise ValueError(f"{where}: ids must be >= 0, got {class_id}")
        if class_id in palette:
            raise ValueError(f"{where}: id {class_id} is listed twice")
        if rgb in owner:
            raise ValueError(f"{where}: colour {list(rgb)} is already used by id {owner[rgb]}; "
                             "each colour must map to exactly one id")
        palette[class_id], owner[rgb] = rgb, class_id
    if not palette:
        raise ValueError(f"{path}: the palette file is empty")
    return palette


def _rgb_array(rgb: RGBInput) -> np.ndarray:
    """``(H, W, 3)`` uint8 array from a PIL image or a ``(3, H, W)`` uint8 / [0, 1] float tensor."""
    if isinstance(rgb, Image.Image):
        return np.asarray(rgb.convert("RGB"))
    check_shape(rgb, (3, "H", "W"), "rgb_to_ids rgb")
    if rgb.is_floating_point():
        rgb = (rgb * 255.0).round().clamp(0, 255)
    return rgb.to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def rgb_to_ids(rgb: RGBInput, palette: Palette, *, name: str = "mask") -> Tensor:
    """Map a colour-coded mask to class ids with ``palette``.

    Args:
        rgb: a PIL image (any mode; converted to RGB) or a ``(3, H, W)`` tensor, uint8 or float
            in [0, 1].
        palette: ``{id: (r, g, b)}``, e.g. from :func:`load_palette`.
        name: what to call the mask in errors (typically its file path).

    Returns:
        ``(H, W)`` long tensor of ids.

    Raises:
        ValueError: listing (up to 10, most frequent first) the colours that are not in the
            palette, with their pixel counts.

    Example:
        >>> rgb = torch.tensor([[[255, 0]], [[0, 0]], [[0, 0]]], dtype=torch.uint8)
        >>> rgb_to_ids(rgb, {3: (255, 0, 0), 7: (0, 0, 0)})
        tensor([[3, 7]])
    """
    arr = _rgb_array(rgb).astype(np.int64)
    codes = (arr[..., 0] << 16) | (arr[..., 1] << 8) | arr[..., 2]
    colors, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    lookup = {(r << 16) | (g << 8) | b: class_id for class_id, (r, g, b) in palette.items()}
    unknown = [i for i, code in enumerate(colors.tolist()) if code not in lookup]
    if unknown:
        unknown.sort(key=lambda i: -counts[i])
        listed = ", ".join(f"{[(c >> 16) & 255, (c >> 8) & 255, c & 255]} ({counts[i]} px)"
                           for i in unknown[:10] for c in [int(colors[i])])
        raise ValueError(f"{name}: {len(unknown)} colour(s) are not in the palette: {listed}; add them "
                         "to the palette file, or re-save the mask without anti-aliasing or JPEG "
                         "compression (which blend colours)")
    ids = np.array([lookup[int(code)] for code in colors], dtype=np.int64)[inverse]
    return torch.from_numpy(ids.reshape(codes.shape))
