"""The models an editor session serves, loaded through the Python API, and what follows from them.

A mask-to-image checkpoint becomes a :class:`~models.app.MaskToImage` (tab "Mask to image"), a
RAIN/SEAN one a :class:`~models.app.RegionStyles` (tab "Region styles"); style-transfer weights
a :class:`~models.app.StyleTransferPipeline` (tab "Style transfer"). The tabs shown are the
ones whose model is loaded.

Example:
    >>> import tempfile
    >>> from models.adain import StyleTransfer
    >>> from models.app import StyleTransferPipeline
    >>> ws = Workspace(None, StyleTransferPipeline(StyleTransfer().eval()), tempfile.mkdtemp())
    >>> ws.tabs
    ['Style transfer']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.data.label_layout import LabelLayout

from ..mask_to_image import MaskToImage
from ..region_styles import RegionStyles
from ..style_transfer import StyleTransferPipeline
from .actions import ResultFolder
from .classes import ClassSwatch, class_swatches

__all__ = ["Workspace", "load_mask_model"]


def load_mask_model(path: str | Path, *, device: torch.device | str = "cpu", layout: LabelLayout | None = None,
                    **official: Any) -> MaskToImage | RegionStyles:
    """A mask-to-image file as :class:`MaskToImage`, or as :class:`RegionStyles` when it holds a RAIN generator.

    Raises:
        ValueError, OSError: what ``infer.py spade`` raises for the file (when it is no RAIN file either).
    """
    try:
        return MaskToImage.load(path, device=device, layout=layout, **official)
    except ValueError as first:
        try:
            return RegionStyles.load(path, device=device, layout=layout, **official)
        except ValueError:
            raise first from None


class Workspace:
    """What one editor serves.

    Args:
        mask_model: the mask-to-image model (``MaskToImage`` or ``RegionStyles``), or None.
        style_transfer: the style-transfer pipeline, or None.
        results: the folder results are written to (for display and download).
    """

    def __init__(self, mask_model: MaskToImage | RegionStyles | None,
                 style_transfer: StyleTransferPipeline | None, results: str | Path) -> None:
        if mask_model is None and style_transfer is None:
            raise ValueError("the editor needs a model: --checkpoint (mask to image, region styles) and/or "
                             "--vgg/--decoder, --style-checkpoint or --style-onnx (style transfer)")
        self.mask_model, self.style_transfer = mask_model, style_transfer
        self.folder = ResultFolder(results)

    @property
    def tabs(self) -> list[str]:
        """The tabs this workspace fills, in the editor's order."""
        tabs = []
        if isinstance(self.mask_model, MaskToImage):
            tabs.append("Mask to image")
        if isinstance(self.mask_model, RegionStyles):
            tabs.append("Region styles")
        if self.style_transfer is not None:
            tabs.append("Style transfer")
        return tabs

    @property
    def swatches(self) -> list[ClassSwatch]:
        """The mask model's classes (empty without one)."""
        return class_swatches(self.mask_model.layout) if self.mask_model is not None else []

    @property
    def canvas_size(self) -> tuple[int, int]:
        """``(H, W)`` of a new canvas: the mask model's output size."""
        model = self.mask_model
        return tuple(model.output_size if isinstance(model, MaskToImage) else model.backend.output_size)

    @property
    def samples(self) -> bool:
        """Whether the mask-to-image model draws a latent or noise (VAE, OASIS, SDM), so the seed changes the image."""
        model = self.mask_model
        return isinstance(model, MaskToImage) and model.stochastic
