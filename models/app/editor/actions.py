"""What the editor's buttons do, as plain functions over the Python API (no Gradio here).

Every image comes from :class:`~models.app.MaskToImage`, :class:`~models.app.RegionStyles` or
:class:`~models.app.StyleTransferPipeline` (the calls ``infer.py`` makes), so the editor, the
CLI and the API give the same image for the same inputs and seed. Results are written as PNG
files with :func:`~models.data.io.save_image` (the CLI's writer) for display and download;
errors become the CLI's one line (:func:`error_line`).

Example:
    >>> import tempfile, torch
    >>> from models.adain import StyleTransfer
    >>> from models.app import StyleTransferPipeline
    >>> folder = ResultFolder(tempfile.mkdtemp())
    >>> image = torch.rand(3, 20, 28)
    >>> result = stylise(StyleTransferPipeline(StyleTransfer().eval()), image, [torch.rand(3, 16, 16)],
    ...                  content_size=0, folder=folder)
    >>> result.path.suffix, result.caption.startswith("stylised (α 1) in ")
    ('.png', True)
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from models.data.io import save_image
from models.data.label_layout import LabelLayout
from models.sean.codes import RegionCodes, mix_region_codes
from models.weights import atomic_write

from ..errors import USER_ERRORS, one_line
from ..mask_to_image import MaskToImage
from ..region_styles import RegionStyles
from ..style_transfer import ImageInput, StyleTransferPipeline

__all__ = ["Result", "ResultFolder", "apply_reference", "error_line", "generate_image", "parse_weights",
           "render_regions", "save_mask", "stylise"]

_log = logging.getLogger(__name__)


def error_line(err: BaseException) -> str:
    """The message the editor shows for ``err``: the CLI's ``error: …`` line, never a stack trace.

    User errors (bad files, bad values) and non-finite outputs read exactly as ``infer.py``
    prints them; anything else (a bug) is logged with its traceback on the server's console
    and shown as one line too.

    Example:
        >>> error_line(FileNotFoundError(2, "No such file or directory", "mask.png"))
        'error: mask.png: no such file or directory — check the path'
    """
    if not isinstance(err, (*USER_ERRORS, FloatingPointError)):
        _log.error("editor: unexpected error", exc_info=err)
    return one_line(err)


@dataclass(frozen=True)
class Result:
    """An image the editor shows and offers for download.

    Attributes:
        image: ``(3, H, W)`` in [0, 1], as the API returned it.
        path: the PNG written from it.
        seconds: how long the API call took.
        caption: what the editor writes under it.
    """

    image: Tensor
    path: Path
    seconds: float
    caption: str


class ResultFolder:
    """Where the editor writes its results: one new PNG (or codes file) per result, never overwritten."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._count = itertools.count()

    def path(self, stem: str, suffix: str) -> Path:
        """A new file name ``{stem}_{n}{suffix}`` under the folder."""
        return self.root / f"{stem}_{next(self._count):04d}{suffix}"

    def result(self, image: Tensor, stem: str, seconds: float, what: str) -> Result:
        """Write ``image`` with :func:`~models.data.io.save_image` and describe it."""
        path = save_image(image, self.path(stem, ".png"))
        h, w = image.shape[-2:]
        return Result(image, path, seconds, f"{what} in {seconds:.2f} s ({w}×{h}, {path.name})")


def generate_image(model: MaskToImage, ids: Tensor, *, seed: int, folder: ResultFolder,
                   style: ImageInput | None = None) -> Result:
    """:meth:`MaskToImage.generate_ids` for one map of training ids (the image at the map's size)."""
    start = time.perf_counter()
    image = model.generate_ids([ids], style=style, seed=seed)[0]
    return folder.result(image, "generated", time.perf_counter() - start, f"generated (seed {seed})")


def save_mask(ids: Tensor, layout: LabelLayout, folder: ResultFolder) -> Path:
    """Training ids as a label PNG of stored ids (8- or 16-bit) that ``infer.py --labels`` reads back as ``ids``.

    Example:
        >>> import tempfile, torch
        >>> from models.data.io import load_label
        >>> layout = LabelLayout(3, contain_dontcare_label=True)
        >>> path = save_mask(torch.tensor([[0, 3]]), layout, ResultFolder(tempfile.mkdtemp()))
        >>> load_label(path).tolist(), layout.read(path).tolist()
        ([[0, 255]], [[0, 3]])
    """
    stored = layout.to_stored(ids).cpu().numpy()
    pixels = stored.astype(np.uint8 if stored.max(initial=0) < 256 else np.uint16)
    path = folder.path("mask", ".png")
    return atomic_write(path, lambda f: Image.fromarray(pixels).save(f, format="PNG"))


def apply_reference(model: RegionStyles, codes: RegionCodes, image: ImageInput, mask: Tensor,
                    regions: Sequence[int] | None) -> RegionCodes:
    """``codes`` with the regions of ``image`` (under the training ids ``mask``) laid over them.

    ``regions=None`` takes every region the reference has; a list only those (the CLI's
    ``--style`` and ``--style-for R=img:mask``).
    """
    reference = model.codes(image, model.layout.to_stored(mask))
    return mix_region_codes([(codes, None), (reference, None if regions is None else list(regions))])


def render_regions(model: RegionStyles, ids: Tensor, codes: RegionCodes, *, seed: int,
                   folder: ResultFolder) -> Result:
    """:meth:`RegionStyles.generate` for one map of training ids styled by ``codes``."""
    start = time.perf_counter()
    image = model.generate(model.layout.to_stored(ids), codes, seed=seed)
    return folder.result(image, "regions", time.perf_counter() - start, f"generated (seed {seed})")


def parse_weights(text: str) -> list[float] | None:
    """Style weights typed as ``"0.3 0.7"`` (or with commas); empty: None (equal weights).

    Their count and sum are checked by the API (:meth:`StyleTransferPipeline.transfer`).

    Raises:
        ValueError: for anything but numbers.

    Example:
        >>> parse_weights("1, 3")
        [1.0, 3.0]
        >>> parse_weights("  ") is None
        True
    """
    fields = text.replace(",", " ").split()
    try:
        return [float(f) for f in fields] or None
    except ValueError:
        raise ValueError(f"--style-weights: must be numbers, got {text!r}") from None


def stylise(pipe: StyleTransferPipeline, content: ImageInput, styles: Sequence[ImageInput], *, folder: ResultFolder,
            alpha: float = 1.0, style_weights: Sequence[float] | None = None, preserve_color: str | None = None,
            mask: ImageInput | None = None, content_size: int = 512, style_size: int = 512) -> Result:
    """:meth:`StyleTransferPipeline.transfer` of one content with one or several styles.

    Raises:
        ValueError: the CLI's messages for a mask without exactly two styles, or with weights.
    """
    if not styles:
        raise ValueError("--style: give at least one style image")
    if mask is not None and len(styles) != 2:
        raise ValueError(f"--mask needs exactly two styles (foreground, background), got {len(styles)}")
    if mask is not None and style_weights:
        raise ValueError("--mask and --style-weights cannot be combined")
    start = time.perf_counter()
    image = pipe.transfer(content, list(styles), alpha=alpha, style_weights=style_weights,
                          preserve_color=preserve_color, mask=mask, content_size=content_size,
                          style_size=style_size)
    return folder.result(image, "stylised", time.perf_counter() - start, f"stylised (α {alpha:g})")
