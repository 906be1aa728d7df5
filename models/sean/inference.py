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
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from models.data.io import load_label, load_rgb, save_image
from models.data.palette import load_palette
from models.spade.checkpoint import LabelLayout
from models.spade.inference import add_official_arguments, load_from_args, postprocess, preprocess

from .codes import RegionCodes, mix_region_codes
from .generator import SEANGenerator

__all__ = ["add_arguments", "parse_style_for", "region_codes", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``infer.py rain``."""
    parser.add_argument("--checkpoint", required=True,
                        help="Lightning .ckpt (generator: rain) or official SEAN *_net_G.pth")
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


def _image(path: Path, size: tuple[int, int]) -> Tensor:
    """An RGB file as the generator's input: ``(1, 3, H, W)`` in [-1, 1] at ``size``."""
    rgb = F.interpolate(load_rgb(path)[None], size=size, mode="bilinear", align_corners=False, antialias=True)
    return rgb.clamp(0, 1) * 2 - 1


@torch.inference_mode()
def region_codes(generator: SEANGenerator, image: Path, label: Tensor, layout: LabelLayout) -> RegionCodes:
    """The codes of ``image``'s regions under its label map ``label`` ``(H, W)`` (any sizes)."""
    device = generator.conv_img.weight.device
    seg = preprocess([label], None, layout, generator.output_size).to(device)
    codes, present = generator.Zencoder.encode_regions(_image(image, generator.output_size).to(device), seg)
    return RegionCodes(codes[0].float().cpu(), present[0].cpu())


def _mixed_codes(args: argparse.Namespace, generator: SEANGenerator, layout: LabelLayout,
                 target: Tensor, palette: dict | None) -> RegionCodes:
    """The sources of the module docstring, lowest priority first, mixed."""
    def mask(path: str | Path | None) -> Tensor:
        return target if path is None else load_label(path, palette)

    layers: list[tuple[RegionCodes, list[int] | None]] = [
        (RegionCodes.empty(generator.label_nc, generator.style_dim), None)]
    if args.target_image:
        layers.append((region_codes(generator, Path(args.target_image), target, layout), None))
    if args.codes:
        layers.append((RegionCodes.load(args.codes).check_fits(generator.label_nc, generator.style_dim,
                                                               f"--codes {args.codes}"), None))
    if args.style:
        layers.append((region_codes(generator, Path(args.style), mask(args.style_labels), layout), None))
    elif args.style_labels:
        raise ValueError("--style-labels is the mask of --style; pass --style too")
    for spec in args.style_for:
        regions, image, image_mask = parse_style_for(spec, generator.label_nc)
        layers.append((region_codes(generator, image, mask(image_mask), layout), regions))
    if len(layers) == 1:
        raise ValueError("infer.py rain needs a style source: --style, --style-for, --codes or "
                         "--target-image")
    return mix_region_codes(layers)


def run(args: argparse.Namespace) -> int:
    """Mix the region codes, save them if asked, generate one image; returns 0."""
    generator, layout = load_from_args(args, kind="rain")
    if not isinstance(generator, SEANGenerator):
        raise ValueError(f"{args.checkpoint} holds a {type(generator).__name__}, not a RAIN (SEAN) "
                         "generator: use infer.py spade")
    if layout.use_instance:
        raise ValueError("RAIN generators give every input channel a region code and run without "
                         "instance edges; this layout has them (pass --no-instance for official files)")
    palette = load_palette(args.palette) if args.palette else None
    target = load_label(args.labels, palette)
    codes = _mixed_codes(args, generator, layout, target, palette)
    if args.codes_out:
        print(f"saved region codes to {codes.save(args.codes_out)}")
    device = generator.conv_img.weight.device
    seg = preprocess([target], None, layout, generator.output_size).to(device)
    noise = torch.Generator(device=device).manual_seed(args.seed)
    with torch.inference_mode():
        fake = generator(seg, style_codes=codes.codes[None].to(device), noise=noise)
    sizes = None if args.model_size else [tuple(target.shape)]
    path = save_image(postprocess(fake, sizes)[0], Path(args.out) / f"{Path(args.labels).stem}.{args.ext}")
    print(f"wrote {path}")
    return 0
