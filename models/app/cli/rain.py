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
``--onnx-encoder`` (``--part encoder``). Both go through :class:`~models.app.RegionStyles`,
so the label contract, pre-/post-processing, code mixing and seeded noise are the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.data.io import output_paths, save_image
from models.data.palette import Palette, load_palette
from models.sean.codes import RegionCodes, mix_region_codes

from ..region_styles import RegionStyles
from .options import image_ext
from .spade import add_official_arguments, layout_from_args, official_options

__all__ = ["add_arguments", "load_region_styles", "parse_style_for", "run"]


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
    parser.add_argument("--ext", type=image_ext, default="png", help="output image format")
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


def load_region_styles(args: argparse.Namespace) -> RegionStyles:
    """The :class:`~models.app.RegionStyles` of ``--checkpoint`` or ``--onnx``/``--onnx-encoder``."""
    if bool(args.checkpoint) == bool(args.onnx):
        raise ValueError("give exactly one of --checkpoint (a PyTorch checkpoint) or --onnx (an exported "
                         "generator, run with onnxruntime)")
    if args.onnx_encoder and not args.onnx:
        raise ValueError("--onnx-encoder goes with --onnx; a --checkpoint holds its own encoder")
    return RegionStyles.load(args.checkpoint or args.onnx, onnx_encoder=args.onnx_encoder, device=args.device,
                             layout=layout_from_args(args), **official_options(args))


def _mixed_codes(args: argparse.Namespace, model: RegionStyles, palette: Palette | None) -> RegionCodes:
    """The sources of the module docstring, lowest priority first, mixed."""
    def codes(image: str | Path, mask: str | Path | None) -> RegionCodes:
        return model.codes(image, args.labels if mask is None else mask, palette)

    layers: list[tuple[RegionCodes, list[int] | None]] = [(RegionCodes.empty(model.label_nc, model.style_dim), None)]
    if args.target_image:
        layers.append((codes(args.target_image, None), None))
    if args.codes:
        layers.append((RegionCodes.load(args.codes).check_fits(model.label_nc, model.style_dim,
                                                               f"--codes {args.codes}"), None))
    if args.style:
        layers.append((codes(args.style, args.style_labels), None))
    elif args.style_labels:
        raise ValueError("--style-labels is the mask of --style; pass --style too")
    for spec in args.style_for:
        regions, image, image_mask = parse_style_for(spec, model.label_nc)
        layers.append((codes(image, image_mask), regions))
    if len(layers) == 1:
        raise ValueError("infer.py rain needs a style source: --style, --style-for, --codes or "
                         "--target-image")
    return mix_region_codes(layers)


def run(args: argparse.Namespace) -> int:
    """Mix the region codes, save them if asked, generate one image; returns 0."""
    target = output_paths([Path(args.labels)], None, Path(args.out), args.ext)[0]
    model = load_region_styles(args)
    palette = load_palette(args.palette) if args.palette else None
    codes = _mixed_codes(args, model, palette)
    if args.codes_out:
        print(f"saved region codes to {codes.save(args.codes_out)}")
    image = model.generate(args.labels, codes, seed=args.seed, palette=palette, model_size=args.model_size)
    print(f"wrote {save_image(image, target)}")
    return 0
