"""``infer.py rain``: a label map plus per-region styles from reference images → an image.

Each region of the target label map takes its style code from a source, by priority (highest
first):

1. ``--style-for R=img[:mask]`` (repeatable; ``R`` may list regions, ``3,5=img``): region ``R``
   pooled from ``img`` under ``mask``;
2. ``--style img`` with ``--style-labels mask``: every region the reference has;
3. ``--codes file``: codes saved earlier with ``--codes-out`` (only the regions they have);
4. ``--target-image img``: the target's own photo under the target label map.

A region that no source has (absent from the reference's mask, or too small to survive the
encoder's half-resolution map) falls back to the next source down, and to the **zero code**
when none has it. A reference whose mask is not given is pooled under the target's label
map (the reference is taken to be aligned with it, e.g. the target's own photo).
``--codes-out`` saves the mixed codes (``.safetensors``, or ``torch.save`` of plain tensors).

The backend is the PyTorch generator of ``--checkpoint``, or exported ONNX files run with
onnxruntime: ``--onnx`` (``infer.py export --task rain``) and, for codes from images,
``--onnx-encoder`` (``--part encoder``). Both go through one :class:`RainBackend`, so the
pre-/post-processing, code mixing and seeded noise are the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from models.data.io import load_label, load_rgb, save_image
from models.data.palette import load_palette
from models.export.runtime import OnnxRainGenerator, OnnxSession
from models.spade.checkpoint import LabelLayout
from models.spade.inference import (
    add_official_arguments,
    load_from_args,
    load_onnx_from_args,
    postprocess,
    preprocess,
)

from .codes import RegionCodes, mix_region_codes
from .generator import SEANGenerator

__all__ = ["RainBackend", "add_arguments", "load_backend", "parse_style_for", "region_codes", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``infer.py rain``."""
    parser.add_argument("--checkpoint", help="Lightning .ckpt (generator: rain) or official SEAN *_net_G.pth")
    parser.add_argument("--onnx", help="an exported generator (infer.py export --task rain), run with "
                                    "onnxruntime; not with --checkpoint")
    parser.add_argument("--onnx-encoder", help="with --onnx: the exported style encoder (infer.py export "
                                            "--task rain --part encoder), for codes from images")
    parser.add_argument("--labels", required=True, help="the target label map (PNG of ids)")
    parser.add_argument("--style", help="reference image whose regions style the target")
    parser.add_argument("--style-labels", help="the reference's label map (default: the target's)")
    parser.add_argument("--style-for", action="append", default=[], metavar="R[,R...]=IMG[:MASK]",
                        help="take region(s) R from IMG pooled under MASK (default mask: the target's); "
                             "repeatable, later entries win")
    parser.add_argument("--codes", help="codes file from --codes-out, used below --style")
    parser.add_argument("--target-image", help="the target's own photo: its codes are the last fallback")
    parser.add_argument("--codes-out", help="save the mixed codes (.safetensors, or .pt via torch.save)")
    parser.add_argument("--palette", help="palette file (JSON or 'id r g b' lines) for colour masks")
    parser.add_argument("--out", required=True, help="output folder; the image is named after --labels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the RAIN layers' noise")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ext", default="png", help="output image format")
    parser.add_argument("--model-size", action="store_true",
                        help="keep the generator's output size instead of the label map's size")
    add_official_arguments(parser)


def parse_style_for(spec: str, label_nc: int) -> tuple[list[int], Path, Path | None]:
    """Split ``"3,5=ref.jpg:ref_mask.png"`` into regions, image and optional mask.

    Example:
        >>> parse_style_for("3,5=ref.jpg:ref_mask.png", 19)
        ([3, 5], PosixPath('ref.jpg'), PosixPath('ref_mask.png'))
    """
    regions, sep, files = spec.partition("=")
    try:
        ids = [int(r) for r in regions.split(",")] if sep and files else None
    except ValueError:
        ids = None
    if ids is None:
        raise ValueError(f"--style-for {spec!r}: expected R[,R...]=IMAGE[:MASK], "
                         "e.g. 3=other.jpg:other_mask.png")
    bad = [r for r in ids if not 0 <= r < label_nc]
    if bad:
        raise ValueError(f"--style-for {spec!r}: regions {bad} are outside [0, {label_nc}) for this "
                         "generator")
    image, _, mask = files.partition(":")
    return ids, Path(image), Path(mask) if mask else None


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


def load_backend(args: argparse.Namespace) -> tuple[RainBackend, LabelLayout]:
    """The backend of ``--checkpoint`` or ``--onnx``/``--onnx-encoder``, and its label layout."""
    if bool(args.checkpoint) == bool(args.onnx):
        raise ValueError("give exactly one of --checkpoint (a PyTorch checkpoint) or --onnx (an exported "
                         "generator, run with onnxruntime)")
    if args.onnx_encoder and not args.onnx:
        raise ValueError("--onnx-encoder goes with --onnx; a --checkpoint holds its own encoder")
    if args.onnx:
        generator, layout = load_onnx_from_args(args, OnnxRainGenerator)
        return RainBackend.from_onnx(generator, args.onnx_encoder, args.device), layout
    generator, layout = load_from_args(args, kind="rain")
    if not isinstance(generator, SEANGenerator):
        raise ValueError(f"{args.checkpoint} holds a {type(generator).__name__}, not a RAIN (SEAN) "
                         "generator: use infer.py spade")
    return RainBackend.from_torch(generator), layout


def _image(path: Path, size: tuple[int, int]) -> Tensor:
    """An RGB file as the generator's input: ``(1, 3, H, W)`` in [-1, 1] at ``size``."""
    rgb = F.interpolate(load_rgb(path)[None], size=size, mode="bilinear", align_corners=False, antialias=True)
    return rgb.clamp(0, 1) * 2 - 1


@torch.inference_mode()
def region_codes(backend: RainBackend | SEANGenerator, image: Path, label: Tensor,
                 layout: LabelLayout) -> RegionCodes:
    """The codes of ``image``'s regions under its label map ``label`` ``(H, W)`` (any sizes)."""
    if isinstance(backend, SEANGenerator):
        backend = RainBackend.from_torch(backend)
    if backend.encode_regions is None:
        raise ValueError(f"codes from the image {image} need the style encoder: with --onnx pass "
                         "--onnx-encoder (infer.py export --task rain --part encoder), or use --codes")
    seg = preprocess([label], None, layout, backend.output_size).to(backend.device)
    codes, present = backend.encode_regions(_image(image, backend.output_size).to(backend.device), seg)
    return RegionCodes(codes[0].float().cpu(), present[0].cpu())


def _mixed_codes(args: argparse.Namespace, backend: RainBackend, layout: LabelLayout,
                 target: Tensor, palette: dict | None) -> RegionCodes:
    """The sources of the module docstring, lowest priority first, mixed."""
    def mask(path: str | Path | None) -> Tensor:
        return target if path is None else load_label(path, palette)

    generator = backend.generator
    layers: list[tuple[RegionCodes, list[int] | None]] = [
        (RegionCodes.empty(generator.label_nc, generator.style_dim), None)]
    if args.target_image:
        layers.append((region_codes(backend, Path(args.target_image), target, layout), None))
    if args.codes:
        layers.append((RegionCodes.load(args.codes).check_fits(generator.label_nc, generator.style_dim,
                                                               f"--codes {args.codes}"), None))
    if args.style:
        layers.append((region_codes(backend, Path(args.style), mask(args.style_labels), layout), None))
    elif args.style_labels:
        raise ValueError("--style-labels is the mask of --style; pass --style too")
    for spec in args.style_for:
        regions, image, image_mask = parse_style_for(spec, generator.label_nc)
        layers.append((region_codes(backend, image, mask(image_mask), layout), regions))
    if len(layers) == 1:
        raise ValueError("infer.py rain needs a style source: --style, --style-for, --codes or "
                         "--target-image")
    return mix_region_codes(layers)


def run(args: argparse.Namespace) -> int:
    """Mix the region codes, save them if asked, generate one image; returns 0."""
    backend, layout = load_backend(args)
    if layout.use_instance:
        raise ValueError("RAIN generators give every input channel a region code and run without "
                         "instance edges; this layout has them (pass --no-instance for official files)")
    palette = load_palette(args.palette) if args.palette else None
    target = load_label(args.labels, palette)
    codes = _mixed_codes(args, backend, layout, target, palette)
    if args.codes_out:
        print(f"saved region codes to {codes.save(args.codes_out)}")
    device = backend.device
    seg = preprocess([target], None, layout, backend.output_size).to(device)
    noise = torch.Generator(device=device).manual_seed(args.seed)
    with torch.inference_mode():
        fake = backend.generator(seg, style_codes=codes.codes[None].to(device), noise=noise)
    sizes = None if args.model_size else [tuple(target.shape)]
    path = save_image(postprocess(fake, sizes)[0], Path(args.out) / f"{Path(args.labels).stem}.{args.ext}")
    print(f"wrote {path}")
    return 0
