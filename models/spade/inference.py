"""``infer.py spade``: label maps in, images out.

Pre- and post-processing live in :func:`preprocess` and :func:`postprocess` so every
backend shares them: the PyTorch generator of ``--checkpoint``, or an exported ONNX file
(``--onnx``, from ``infer.py export``) run with onnxruntime (CUDA provider when available).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from models.data.io import IMAGE_EXTENSIONS, list_images, load_label, load_rgb, save_image
from models.data.palette import load_palette
from models.data.semantic_input import semantic_input
from models.export.runtime import OnnxGenerator, OnnxSession
from models.sean.generator import SEANGenerator

from .checkpoint import LabelLayout, load_encoder, load_generator
from .generator import SPADEGenerator

__all__ = ["add_arguments", "add_official_arguments", "load_from_args", "load_onnx_from_args", "postprocess",
           "preprocess", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``infer.py spade``."""
    parser.add_argument("--checkpoint", help="Lightning .ckpt from train.py or official *_net_G.pth")
    parser.add_argument("--onnx", help="an exported generator (infer.py export --format onnx), run with "
                                    "onnxruntime; not with --checkpoint")
    parser.add_argument("--labels", required=True, help="a label map (PNG of ids) or a folder of them")
    parser.add_argument("--instances",
                        help="folder of instance maps paired by file stem (instance-edge models)")
    parser.add_argument("--palette", help="palette file (JSON or 'id r g b' lines) for colour masks")
    parser.add_argument("--out", required=True, help="output folder; images are named after the inputs")
    parser.add_argument("--style", help="style image for VAE models: its encoded mean is the latent z")
    parser.add_argument("--encoder", help="official *_net_E.pth for --style (Lightning checkpoints hold it); "
                                       "with --onnx, the exported encoder (infer.py export --part encoder)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for a random z (VAE models without --style)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ext", default="png", help="output image format")
    parser.add_argument("--model-size", action="store_true",
                        help="keep the generator's output size instead of resizing to each label map's size")
    add_official_arguments(parser)


def add_official_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that describe an official ``*_net_G.pth`` (it does not record them)."""
    official = parser.add_argument_group("official checkpoints (the .pth does not record these)")
    official.add_argument("--label-nc", type=int)
    official.add_argument("--contain-dontcare-label", action="store_true")
    official.add_argument("--no-instance", action="store_true")
    official.add_argument("--crop-size", type=int, default=256)
    official.add_argument("--aspect-ratio", type=float, default=1.0)
    official.add_argument("--num-upsampling-layers", choices=["normal", "more", "most"])


def preprocess(label_maps: Sequence[Tensor], instance_maps: Sequence[Tensor] | None, layout: LabelLayout,
               size: tuple[int, int]) -> Tensor:
    """Resize id maps (nearest) to the generator's size and encode them as its input.

    Args:
        label_maps: ``(H_i, W_i)`` long id maps (sizes may differ).
        instance_maps: matching instance maps, or None.
        layout: the generator's label layout.
        size: the generator's ``(H, W)``.

    Returns:
        ``(N, semantic_nc, H, W)`` float map.
    """
    def resize(ids: Tensor) -> Tensor:
        return F.interpolate(ids[None, None].float(), size=size, mode="nearest")[0, 0].long()

    label = torch.stack([resize(m) for m in label_maps])
    instance = torch.stack([resize(m) for m in instance_maps]) if instance_maps is not None else None
    return semantic_input(label, instance, label_nc=layout.label_nc,
                          contain_dontcare_label=layout.contain_dontcare_label,
                          use_instance=layout.use_instance)


def postprocess(images: Tensor, sizes: Sequence[tuple[int, int]] | None = None) -> list[Tensor]:
    """Generator output in [-1, 1] → list of ``(3, H, W)`` images in [0, 1] at ``sizes``."""
    out = []
    for i, image in enumerate(images.float().clamp(-1, 1).add(1).div(2)):
        if sizes is not None and tuple(image.shape[-2:]) != tuple(sizes[i]):
            image = F.interpolate(image[None], size=sizes[i], mode="bilinear", align_corners=False,
                                  antialias=True)[0].clamp(0, 1)
        out.append(image)
    return out


def _inputs(labels: str) -> list[Path]:
    path = Path(labels)
    if path.is_dir():
        return list_images(path, extensions=(".png", ".bmp", ".tif", ".tiff"))
    if not path.is_file():
        raise FileNotFoundError(f"--labels {path} does not exist")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"--labels {path}: not an image file")
    return [path]


def _instance_for(label_path: Path, folder: str) -> Path:
    matches = sorted(Path(folder).glob(label_path.stem + ".*"))
    if not matches:
        raise FileNotFoundError(f"no instance map named {label_path.stem}.* in {folder} for {label_path}")
    return matches[0]


def _style_code(args: argparse.Namespace, use_vae: bool) -> Tensor | None:
    if not args.style:
        return None
    if not use_vae:
        raise ValueError("--style needs a generator trained with use_vae=True; this one maps labels only")
    image = load_rgb(args.style)[None].to(args.device) * 2 - 1
    if args.onnx:
        if not args.encoder:
            raise ValueError("--style with --onnx needs --encoder: the encoder exported with "
                             "infer.py export --part encoder")
        return OnnxSession(args.encoder)(image)[0]
    encoder = load_encoder(args.encoder or args.checkpoint).to(args.device)
    with torch.inference_mode():
        mu, _ = encoder(image)
    return mu


def load_from_args(args: argparse.Namespace, kind: str = "spade") -> tuple[SPADEGenerator, LabelLayout]:
    """:func:`load_generator` with the :func:`add_official_arguments` options; ``kind`` for official files."""
    layout = None
    if args.label_nc is not None:
        layout = LabelLayout(args.label_nc, args.contain_dontcare_label, not args.no_instance)
    generator, layout = load_generator(args.checkpoint, layout=layout, crop_size=args.crop_size,
                                       aspect_ratio=args.aspect_ratio,
                                       num_upsampling_layers=args.num_upsampling_layers, kind=kind)
    return generator.to(args.device), layout


def load_onnx_from_args(args: argparse.Namespace, runner: type = OnnxGenerator) -> tuple[Any, LabelLayout]:
    """``runner(args.onnx)`` (an exported generator) and the label layout recorded in it.

    The :func:`add_official_arguments` options (``--label-nc`` …) override the recorded layout.
    """
    generator = runner(args.onnx)
    layout = generator.layout
    if args.label_nc is not None:
        layout = LabelLayout(args.label_nc, args.contain_dontcare_label, not args.no_instance)
    if layout is None:
        raise ValueError(f"{args.onnx} does not record its label layout: pass --label-nc (and "
                         "--contain-dontcare-label / --no-instance)")
    return generator, layout


def run(args: argparse.Namespace) -> int:
    """Generate one image per label map; returns 0."""
    if bool(args.checkpoint) == bool(args.onnx):
        raise ValueError("give exactly one of --checkpoint (a PyTorch checkpoint) or --onnx (an exported "
                         "generator, run with onnxruntime)")
    generator, layout = load_onnx_from_args(args) if args.onnx else load_from_args(args)
    if isinstance(generator, SEANGenerator):
        raise ValueError(f"{args.checkpoint} holds a RAIN (SEAN) generator, which needs region styles: "
                         "use infer.py rain")
    if layout.use_instance and not args.instances:
        raise ValueError("this generator takes instance edges: pass --instances <folder of instance maps>")
    style_z = _style_code(args, generator.use_vae)
    palette = load_palette(args.palette) if args.palette else None
    paths = _inputs(args.labels)
    out_dir = Path(args.out)
    rng = torch.Generator(device=args.device).manual_seed(args.seed)
    with torch.inference_mode(), tqdm(total=len(paths), desc="spade", unit="img") as bar:
        for start in range(0, len(paths), args.batch_size):
            chunk = paths[start:start + args.batch_size]
            labels = [load_label(p, palette) for p in chunk]
            instances = [load_label(_instance_for(p, args.instances)) for p in chunk] \
                if layout.use_instance else None
            seg = preprocess(labels, instances, layout, generator.output_size).to(args.device)
            z = style_z.expand(len(chunk), -1) if style_z is not None else None
            fake = generator(seg, z, generator=rng)
            sizes = None if args.model_size else [tuple(m.shape) for m in labels]
            for path, image in zip(chunk, postprocess(fake, sizes)):
                save_image(image, out_dir / f"{path.stem}.{args.ext}")
            bar.update(len(chunk))
    print(f"wrote {len(paths)} image(s) to {out_dir}")
    return 0
