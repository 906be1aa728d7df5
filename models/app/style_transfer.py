"""The Python API for style transfer: content and style images in, stylised images out.

:class:`StyleTransferPipeline` wraps a :class:`~models.adain.StyleTransfer` network (the
published pytorch-AdaIN weights, a checkpoint of this project, or an exported ONNX file run
with onnxruntime) with image reading, resizing, device placement and the output check.
``infer.py adain`` is a thin shell over it.

Example:
    >>> import torch
    >>> from models.adain import StyleTransfer
    >>> pipe = StyleTransferPipeline(StyleTransfer().eval())
    >>> out = pipe.transfer(torch.rand(3, 20, 28), [torch.rand(3, 16, 16)], alpha=0.5, content_size=0)
    >>> out.shape                            # the content's own size, in [0, 1]
    torch.Size([3, 20, 28])
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from models.adain import StyleTransfer
from models.data.io import load_rgb

from .checkpoint import load_style_transfer
from .export.runtime import OnnxStyleTransfer
from .mask_to_image import check_finite_images

__all__ = ["ImageInput", "StyleTransferPipeline"]

ImageInput = Union[str, Path, Tensor]  # noqa: UP007 (runtime alias): a file or (3, H, W) in [0, 1]


class StyleTransferPipeline:
    """A style-transfer network behind one call: images (files or tensors) in, images out.

    Args:
        net: a :class:`~models.adain.StyleTransfer` (eval mode) or an ``OnnxStyleTransfer``.
        device: where the PyTorch network runs.
        source: what to call the model in messages.
    """

    def __init__(self, net: StyleTransfer | OnnxStyleTransfer, *, device: torch.device | str = "cpu",
                 source: str = "the model") -> None:
        self.net, self.device, self.source = net, torch.device(device), source

    @classmethod
    def load(cls, *, checkpoint: str | Path | None = None, vgg: str | Path | None = None,
             decoder: str | Path | None = None, onnx: str | Path | None = None,
             device: torch.device | str = "cpu") -> StyleTransferPipeline:
        """Load the published AdaIN pair (``vgg`` + ``decoder``), a ``checkpoint`` of train.py, or an ``onnx`` file."""
        if onnx is not None:
            if checkpoint or vgg or decoder:
                raise ValueError("--onnx runs an exported model: give it alone, not with --checkpoint or "
                                 "--vgg/--decoder")
            return cls(OnnxStyleTransfer(onnx), source=str(onnx))
        net = load_style_transfer(checkpoint=checkpoint, vgg=vgg, decoder=decoder)
        return cls(net.to(device), device=device, source=str(checkpoint or decoder))

    @property
    def is_onnx(self) -> bool:
        """Whether the network is an exported graph (one style per content, no mask or weights)."""
        return isinstance(self.net, OnnxStyleTransfer)

    def read(self, image: ImageInput, size: int) -> Tensor:
        """``(1, 3, H, W)`` on the device; the shorter side resized to ``size`` (0: kept)."""
        rgb = load_rgb(image) if not isinstance(image, Tensor) else image
        if size:
            rgb = TF.resize(rgb, size, antialias=True)
        return rgb[None].to(self.device)

    @torch.inference_mode()
    def transfer(self, content: ImageInput, styles: Sequence[ImageInput] | ImageInput, *, alpha: float = 1.0,
                 style_weights: Sequence[float] | None = None, preserve_color: str | None = None,
                 mask: ImageInput | None = None, content_size: int = 512, style_size: int = 512,
                 bf16: bool = False) -> Tensor:
        """Stylise one content image.

        Args:
            content: a file or ``(3, H, W)`` in [0, 1].
            styles: one or several styles (files or tensors).
            alpha: style strength in [0, 1].
            style_weights: one weight per style: a mixture (None: one style, or a mask).
            preserve_color: ``"coral"`` or ``"luminance"`` keeps the content's colours.
            mask: a binary mask (white: the first of two styles) as a file or ``(H, W)`` tensor.
            content_size: shorter side of the content before stylising (0: keep).
            style_size: shorter side of the styles (0: keep).
            bf16: run the convolutions in bfloat16 autocast.

        Returns:
            ``(3, H, W)`` in [0, 1], at the (resized) content's size.
        """
        if self.is_onnx and (mask is not None or style_weights is not None or bf16):
            raise ValueError("--mask, --style-weights and --bf16 need the PyTorch model (--checkpoint or "
                             "--vgg/--decoder); an exported graph takes one style per content")
        styles = [styles] if isinstance(styles, (str, Path, Tensor)) else list(styles)
        style_images = [self.read(s, style_size) for s in styles]
        if mask is not None:
            mask = (load_rgb(mask).mean(0) if not isinstance(mask, Tensor) else mask.float()).ge(0.5)
            mask = mask.to(self.device)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            out = self.net.transfer(self.read(content, content_size), style_images, alpha=alpha,
                                    style_weights=style_weights, preserve_color=preserve_color, mask=mask)
        check_finite_images(out, self.source)
        return out[0].float()
