r"""``infer.py adain``: stylise images with the published AdaIN weights or a checkpoint of this project.

Examples:
    python infer.py adain --vgg models/vgg_normalised.pth --decoder models/decoder.pth \\
        --content photos/ --style paintings/ --out out/
    python infer.py adain --checkpoint runs/adain/.../last.ckpt --content a.jpg \\
        --style s1.jpg s2.jpg --style-weights 0.3 0.7
    python infer.py adain ... --content a.jpg --style fg.jpg bg.jpg --mask mask.png
    python infer.py adain --onnx adain.onnx --content photos/ --style paintings/ --out out/

Every content × style pair is written as ``{content}_stylized_{style}.{ext}``; with
``--style-weights`` each content gets one ``{content}_interpolation.{ext}`` mixing all styles,
and with ``--mask`` one ``{content}_stylized_{fg}_{bg}.{ext}``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from models.adain.style_transfer import PRESERVE_COLOR
from models.data.io import ImageReadError, list_images, refuse_collisions, save_image

from ..style_transfer import StyleTransferPipeline
from .options import image_ext, non_negative_float, unit_float

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``adain`` options to ``parser``."""
    io = parser.add_argument_group("images")
    io.add_argument("--content", nargs="+", required=True, help="content image files and/or folders")
    io.add_argument("--style", nargs="+", required=True, help="style image files and/or folders")
    io.add_argument("--content-size", type=int, default=512, help="shorter side of the content (0: keep)")
    io.add_argument("--style-size", type=int, default=512, help="shorter side of the styles (0: keep)")
    io.add_argument("--out", default="output", help="output folder")
    io.add_argument("--ext", type=image_ext, default="jpg", help="output file type")
    ctl = parser.add_argument_group("controls")
    ctl.add_argument("--alpha", type=unit_float, default=1.0, help="style strength in [0, 1]")
    ctl.add_argument("--style-weights", type=non_negative_float, nargs="+",
                     help="interpolation weights, one per style: one mixed output per content")
    ctl.add_argument("--preserve-color", choices=PRESERVE_COLOR,
                     help="keep the content's colours (CORAL on the style, or luminance-only transfer)")
    ctl.add_argument("--mask", help="binary mask (white: first style, black: second); needs two styles")
    net = parser.add_argument_group("weights and device")
    net.add_argument("--vgg", help="AdaIN's vgg_normalised.pth (with --decoder)")
    net.add_argument("--decoder", help="AdaIN's decoder.pth or decoder_iter_*.pth.tar (with --vgg)")
    net.add_argument("--checkpoint", help="a Lightning checkpoint of StyleTransferModule (not with --vgg)")
    net.add_argument("--onnx", help="an exported model (infer.py export --task adain --format onnx), run "
                                    "with onnxruntime; not with --checkpoint or --vgg/--decoder")
    net.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, …")
    net.add_argument("--bf16", action="store_true", help="run the convolutions in bfloat16 autocast")


def _files(paths: list[str], option: str) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += list_images(p)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{option} {p} is neither an image file nor a folder")
    return out


def _jobs(args: argparse.Namespace, contents: list[Path],
          styles: list[Path]) -> Iterator[tuple[Path, list[Path], str]]:
    """(content, styles, output stem) for each image to write."""
    for c in contents:
        if args.mask:
            yield c, styles, f"{c.stem}_stylized_{styles[0].stem}_{styles[1].stem}"
        elif args.style_weights:
            yield c, styles, f"{c.stem}_interpolation"
        else:
            for s in styles:
                yield c, [s], f"{c.stem}_stylized_{s.stem}"


def _check(args: argparse.Namespace, styles: list[Path]) -> None:
    """Raise ValueError for inconsistent options (before any work)."""
    if args.mask and len(styles) != 2:
        raise ValueError(f"--mask needs exactly two styles (foreground, background), got {len(styles)}")
    if args.mask and args.style_weights:
        raise ValueError("--mask and --style-weights cannot be combined")
    if args.style_weights and len(args.style_weights) != len(styles):
        raise ValueError(f"--style-weights has {len(args.style_weights)} value(s) for {len(styles)} style(s)")
    if args.style_weights and sum(args.style_weights) <= 0:
        raise ValueError("--style-weights must have a positive sum")
    if min(args.content_size, args.style_size) < 0:
        raise ValueError("--content-size and --style-size must be >= 0 (0 keeps the image's size)")


def run(args: argparse.Namespace) -> int:
    """Stylise every requested pair; returns 0, or 1 if some content images could not be read."""
    contents, styles = _files(args.content, "--content"), _files(args.style, "--style")
    _check(args, styles)
    out_dir = Path(args.out)
    jobs = list(_jobs(args, contents, styles))
    targets = refuse_collisions([(out_dir / f"{stem}.{args.ext}", str(c)) for c, _, stem in jobs])
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    pipe = StyleTransferPipeline.load(checkpoint=args.checkpoint, vgg=args.vgg, decoder=args.decoder,
                                      onnx=args.onnx, device=device)
    failed: set[Path] = set()
    for (content, style_paths, _), target in tqdm(list(zip(jobs, targets)), desc="stylising", unit="image"):
        if content in failed:
            continue
        try:
            out = pipe.transfer(content, style_paths, alpha=args.alpha, style_weights=args.style_weights,
                                preserve_color=args.preserve_color, mask=args.mask,
                                content_size=args.content_size, style_size=args.style_size, bf16=args.bf16)
        except ImageReadError as err:
            if any(str(s) in str(err) for s in style_paths) or (args.mask and args.mask in str(err)):
                raise
            print(f"skipped: {err}", file=sys.stderr)
            failed.add(content)
            continue
        save_image(out, target)
    print(f"wrote {len(jobs) - sum(1 for c, _, _ in jobs if c in failed)} image(s) to {out_dir}")
    return 1 if failed else 0
