"""The Python API for region styles (RAIN/SEAN): a label map plus per-region style codes → an image.

:class:`RegionStyles` holds a RAIN generator (PyTorch, or exported ONNX files run with
onnxruntime) with its style encoder and label contract: :meth:`RegionStyles.codes` pools a
reference image's regions into codes, :func:`~models.sean.codes.mix_region_codes` mixes
sources, :meth:`RegionStyles.generate` renders. ``infer.py rain`` is a thin shell over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from models.data.io import load_rgb
from models.data.label_layout import LabelLayout
from models.data.palette import Palette
from models.sean import SEANGenerator
from models.sean.codes import RegionCodes

from .checkpoint import load_generator
from .export.runtime import OnnxRainGenerator, OnnxSession
from .mask_to_image import LabelInput, check_finite_images, postprocess, resize_ids, resize_image

__all__ = ["RainBackend", "RegionStyles"]


@dataclass(frozen=True)
class RainBackend:
    """A RAIN generator and its style encoder, PyTorch or ONNX, behind one interface.

    Attributes:
        generator: called as ``generator(segmap, style_codes=…, noise=torch.Generator)``.
        encode_regions: ``(image, segmap) → (codes (N, L, D), present (N, L))``, or None when
            the backend has no encoder (ONNX without ``--onnx-encoder``).
        device: where the inputs go.
    """

    generator: SEANGenerator | OnnxRainGenerator
    encode_regions: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None
    device: torch.device | str

    @classmethod
    def from_torch(cls, generator: SEANGenerator) -> RainBackend:
        """A PyTorch generator with its own ``Zencoder``."""
        return cls(generator, generator.Zencoder.encode_regions, generator.conv_img.weight.device)

    @classmethod
    def from_onnx(cls, generator: OnnxRainGenerator, encoder: str | Path | None,
                  device: torch.device | str = "cpu") -> RainBackend:
        """An exported generator and encoder file (None: no codes from images).

        A region counts as present where the encoder gave it a non-zero code: it pools tanh
        features, so a region with pixels gets a non-zero code and one without gets exactly the
        zero code (:func:`~condnorm.functional.region_average_pool`).
        """
        session = None
        if encoder is not None:
            session = OnnxSession(encoder)
            session.require_task("rain-encoder")

        def encode_regions(image: Tensor, segmap: Tensor) -> tuple[Tensor, Tensor]:
            codes = session(image, segmap)[0]
            return codes, codes.ne(0).any(-1)

        return cls(generator, encode_regions if session else None, device)

    @property
    def output_size(self) -> tuple[int, int]:
        """The generator's ``(H, W)``."""
        return tuple(self.generator.output_size)


class RegionStyles:
    """A RAIN generator, its style encoder and label contract: region codes in, images out.

    Args:
        backend: the generator and encoder (:class:`RainBackend`).
        layout: the label contract the generator was trained with.
        source: what to call the model in messages (its file).
    """

    def __init__(self, backend: RainBackend, layout: LabelLayout, *, source: str = "the model") -> None:
        if layout.use_instance:
            raise ValueError(f"{source}: RAIN generators give every input channel a region code and run "
                             "without instance edges; this layout has them (pass --no-instance for official "
                             "files)")
        self.backend, self.layout, self.source = backend, layout, source

    @classmethod
    def load(cls, path: str | Path, *, onnx_encoder: str | Path | None = None, device: torch.device | str = "cpu",
             layout: LabelLayout | None = None, **official: object) -> RegionStyles:
        """Load a Lightning checkpoint (``generator: rain``), an official SEAN ``*_net_G.pth`` or an ``.onnx``.

        Args:
            path: the generator file.
            onnx_encoder: with an ``.onnx`` generator: the exported style encoder (codes from images).
            device: where to run the PyTorch generator.
            layout: the label contract for official files (overrides an export's record).
            **official: ``crop_size``, ``aspect_ratio``, ``num_upsampling_layers`` of an official file.
        """
        path = Path(path)
        if path.suffix == ".onnx":
            generator = OnnxRainGenerator(path)
            backend = RainBackend.from_onnx(generator, onnx_encoder, device)
            layout = layout or generator.layout
        else:
            if onnx_encoder:
                raise ValueError("--onnx-encoder goes with an .onnx generator; a checkpoint holds its own encoder")
            generator, layout = load_generator(path, layout=layout, kind="rain", **official)
            if not isinstance(generator, SEANGenerator):
                raise ValueError(f"{path} holds a {type(generator).__name__}, not a RAIN (SEAN) generator: "
                                 "use MaskToImage (infer.py spade)")
            backend = RainBackend.from_torch(generator.to(device))
        if layout is None:
            raise ValueError(f"{path} does not record its label layout: pass --label-nc (and "
                             "--contain-dontcare-label / --dataset-mode)")
        return cls(backend, layout, source=str(path))

    @property
    def label_nc(self) -> int:
        """Region codes per image (one per input channel)."""
        return self.backend.generator.label_nc

    @property
    def style_dim(self) -> int:
        """Length of a region's code."""
        return self.backend.generator.style_dim

    def read_labels(self, label: LabelInput, palette: Palette | None = None) -> Tensor:
        """Training ids ``(H, W)`` of a label file or of stored ids given directly (:meth:`LabelLayout.read`)."""
        return self.layout.read(label, palette)

    def _segmap(self, ids: Tensor) -> Tensor:
        return self.layout.encode(resize_ids(ids, self.backend.output_size)[None]).to(self.backend.device)

    @torch.inference_mode()
    def codes(self, image: str | Path | Tensor, labels: LabelInput, palette: Palette | None = None) -> RegionCodes:
        """The codes of ``image``'s regions (a file or ``(3, H, W)`` in [0, 1]) under its label map."""
        backend = self.backend
        if backend.encode_regions is None:
            raise ValueError(f"codes from the image {image} need the style encoder: with an .onnx generator pass "
                             "--onnx-encoder (infer.py export --task rain --part encoder), or use saved codes")
        rgb = load_rgb(image) if not isinstance(image, Tensor) else image
        rgb = resize_image(rgb.clamp(0, 1), backend.output_size)[None] * 2 - 1
        codes, present = backend.encode_regions(rgb.to(backend.device), self._segmap(self.read_labels(labels, palette)))
        return RegionCodes(codes[0].float().cpu(), present[0].cpu())

    @torch.inference_mode()
    def generate(self, labels: LabelInput, codes: RegionCodes, *, seed: int = 0, palette: Palette | None = None,
                 model_size: bool = False) -> Tensor:
        """The image ``(3, H, W)`` in [0, 1] of ``labels`` styled by ``codes`` (noise seeded by ``seed``)."""
        codes.check_fits(self.label_nc, self.style_dim, "codes")
        ids = self.read_labels(labels, palette)
        device = self.backend.device
        noise = torch.Generator(device=device).manual_seed(seed)
        fake = self.backend.generator(self._segmap(ids), style_codes=codes.codes[None].to(device), noise=noise)
        check_finite_images(fake, self.source)
        return postprocess(fake, None if model_size else [tuple(ids.shape)])[0]
