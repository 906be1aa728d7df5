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
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from models.data.io import ImageReadError, list_images, load_rgb, save_image
from models.export.runtime import OnnxStyleTransfer
from models.lit.style_transfer import StyleTransferModule

from .style_transfer import PRESERVE_COLOR, StyleTransfer

__all__ = ["add_arguments", "load_network", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``adain`` options to ``parser``."""
    io = parser.add_argument_group("images")
    io.add_argument("--content", nargs="+", required=True, help="content image files and/or folders")
    io.add_argument("--style", nargs="+", required=True, help="style image files and/or folders")
    io.add_argument("--content-size", type=int, default=512, help="shorter side of the content (0: keep)")
    io.add_argument("--style-size", type=int, default=512, help="shorter side of the styles (0: keep)")
    io.add_argument("--out", default="output", help="output folder")
    io.add_argument("--ext", default="jpg", help="output file type (jpg, png, …)")
    ctl = parser.add_argument_group("controls")
    ctl.add_argument("--alpha", type=float, default=1.0, help="style strength in [0, 1]")
    ctl.add_argument("--style-weights", type=float, nargs="+",
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


def _files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += list_images(p)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} is neither an image file nor a folder")
    return out


def _load(path: Path, size: int, device: torch.device) -> Tensor:
    image = load_rgb(path)
    if size:
        image = TF.resize(image, size, antialias=True)
    return image[None].to(device)


def load_network(args: argparse.Namespace, device: torch.device) -> StyleTransfer:
    """The PyTorch network of ``--checkpoint`` or ``--vgg``/``--decoder``, on ``device``, in eval mode."""
    if args.checkpoint:
        module = StyleTransferModule.load_from_checkpoint(args.checkpoint, map_location="cpu",
                                                          weights_only=True, encoder_weights=None,
                                                          decoder_weights=None)
        net = module.net
    else:
        net = StyleTransfer.from_official(vgg=args.vgg, decoder=args.decoder)
    return net.to(device).eval()


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


def _check(args: argparse.Namespace, styles: list[Path]) -> str | None:
    """An error message for inconsistent options, or None."""
    if args.onnx and (args.checkpoint or args.vgg or args.decoder):
        return "--onnx runs an exported model: give it alone, not with --checkpoint or --vgg/--decoder"
    if args.onnx and (args.mask or args.style_weights or args.bf16):
        return ("--mask, --style-weights and --bf16 need the PyTorch model (--checkpoint or "
                "--vgg/--decoder); an exported graph takes one style per content")
    if args.checkpoint and (args.vgg or args.decoder):
        return "give either --checkpoint or --vgg/--decoder, not both"
    if not args.onnx and not args.checkpoint and not (args.vgg and args.decoder):
        return ("give --vgg and --decoder (the published AdaIN weights), --checkpoint (a model "
                "trained with train.py) or --onnx (an exported model)")
    if args.mask and len(styles) != 2:
        return f"--mask needs exactly two styles (foreground, background), got {len(styles)}"
    if args.mask and args.style_weights:
        return "--mask and --style-weights cannot be combined"
    if args.style_weights and len(args.style_weights) != len(styles):
        return f"--style-weights has {len(args.style_weights)} value(s) for {len(styles)} style(s)"
    if not 0.0 <= args.alpha <= 1.0:
        return f"--alpha must be in [0, 1], got {args.alpha}"
    return None


def run(args: argparse.Namespace) -> int:
    """Stylise every requested pair; returns 0, 1 if some images failed, 2 on bad options."""
    try:
        contents, styles = _files(args.content), _files(args.style)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    error = _check(args, styles)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    try:
        style_images = {s: _load(s, args.style_size, device) for s in styles}
        mask = load_rgb(args.mask).mean(0).ge(0.5).to(device) if args.mask else None
    except ImageReadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    net = OnnxStyleTransfer(args.onnx) if args.onnx else load_network(args, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    out_dir, ext = Path(args.out), args.ext.lstrip(".")
    failed, loaded = [], (None, None)
    for content_path, style_paths, stem in tqdm(list(_jobs(args, contents, styles)), desc="stylising",
                                                unit="image"):
        if content_path in failed:
            continue
        try:
            if loaded[0] != content_path:
                loaded = content_path, _load(content_path, args.content_size, device)
        except ImageReadError as err:
            print(f"skipped: {err}", file=sys.stderr)
            failed.append(content_path)
            continue
        content = loaded[1]
        with torch.inference_mode(), autocast:
            out = net.transfer(content, [style_images[s] for s in style_paths], alpha=args.alpha,
                               style_weights=args.style_weights, preserve_color=args.preserve_color,
                               mask=mask)
        save_image(out[0].float(), out_dir / f"{stem}.{ext}")
    return 1 if failed else 0
