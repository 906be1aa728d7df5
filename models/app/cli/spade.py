"""``infer.py spade``: label maps in, images out — a thin shell over :class:`~models.app.MaskToImage`.

Label files are read through the model's label contract (id shift, don't-care id, palette),
exactly as training read them. Outputs mirror the input tree under ``--out`` (``masks/a/x.png``
→ ``out/a/x.png``), so names never collide; every option is checked before any work starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from models.data.io import list_images, output_paths, save_image
from models.data.label_layout import LabelLayout
from models.data.layouts import DATASET_MODES
from models.data.palette import load_palette

from ..mask_to_image import MaskToImage
from .options import image_ext, positive_int

__all__ = ["LABEL_EXTENSIONS", "add_arguments", "add_official_arguments", "label_files", "layout_from_args",
           "run"]

LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``infer.py spade``."""
    parser.add_argument("--checkpoint", help="Lightning .ckpt from train.py, official *_net_G.pth, an exported "
                                          ".safetensors or .onnx file")
    parser.add_argument("--onnx", help="an exported generator (infer.py export --format onnx), run with "
                                    "onnxruntime (same as --checkpoint file.onnx)")
    parser.add_argument("--labels", required=True, help="a label map (PNG of ids) or a folder of them "
                                                      "(searched recursively)")
    parser.add_argument("--instances", help="folder of instance maps paired by relative path and stem "
                                         "(instance-edge models; without it the class boundaries stand in)")
    parser.add_argument("--palette", help="palette file (JSON or 'id r g b' lines) for colour masks "
                                       "(default: the one the model was trained with)")
    parser.add_argument("--out", required=True, help="output folder; images mirror the input tree")
    parser.add_argument("--style", help="style image for VAE models: its encoded mean is the latent z")
    parser.add_argument("--encoder", help="official *_net_E.pth for --style (Lightning checkpoints hold it); "
                                       "for ONNX, the exported encoder (infer.py export --part encoder)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for a random z (VAE models without --style) or the 3-D noise (OASIS models)")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ext", type=image_ext, default="png", help="output image format (png, jpg, bmp, webp, tif)")
    parser.add_argument("--model-size", action="store_true",
                        help="keep the generator's output size instead of resizing to each label map's size")
    add_official_arguments(parser)


def add_official_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that describe an official ``*_net_G.pth`` (it does not record them)."""
    official = parser.add_argument_group("official checkpoints (the .pth does not record these)")
    official.add_argument("--label-nc", type=positive_int)
    official.add_argument("--contain-dontcare-label", action="store_true")
    official.add_argument("--no-instance", action="store_true")
    official.add_argument("--dataset-mode", default="custom", choices=[m for m in DATASET_MODES if m != "shapes"],
                          help="the id convention of the label files (ade20k: 1-based ids)")
    official.add_argument("--crop-size", type=positive_int, default=256)
    official.add_argument("--aspect-ratio", type=float, default=1.0)
    official.add_argument("--num-upsampling-layers", choices=["normal", "more", "most"])


def layout_from_args(args: argparse.Namespace) -> LabelLayout | None:
    """The label layout given by ``--label-nc`` … (None: the file records it)."""
    if args.label_nc is None:
        return None
    return LabelLayout(args.label_nc, args.contain_dontcare_label, not args.no_instance, args.dataset_mode)


def official_options(args: argparse.Namespace) -> dict:
    """``crop_size``/``aspect_ratio``/``num_upsampling_layers`` for :func:`~models.app.checkpoint.load_generator`."""
    return {"crop_size": args.crop_size, "aspect_ratio": args.aspect_ratio,
            "num_upsampling_layers": args.num_upsampling_layers}


def label_files(labels: str) -> tuple[list[Path], Path | None]:
    """The label files of ``--labels`` and the folder they are relative to (None for one file)."""
    path = Path(labels)
    if path.is_dir():
        return list_images(path, extensions=LABEL_EXTENSIONS), path
    if not path.is_file():
        raise FileNotFoundError(f"--labels {path} does not exist")
    if path.suffix.lower() not in LABEL_EXTENSIONS:
        raise ValueError(f"--labels {path}: label maps must be lossless {'/'.join(LABEL_EXTENSIONS)} files")
    return [path], None


def _instance_for(label: Path, root: Path | None, folder: Path) -> Path:
    """The instance map paired with ``label``: same relative folder and stem under ``folder``."""
    relative = label.relative_to(root).parent if root is not None else Path()
    matches = sorted((folder / relative).glob(label.stem + ".*"))
    if not matches:
        raise FileNotFoundError(f"--instances: no instance map {folder / relative / label.stem}.* for {label}; "
                                "instance maps pair with label maps by relative folder and file stem")
    return matches[0]


def run(args: argparse.Namespace) -> int:
    """Generate one image per label map; returns 0."""
    if bool(args.checkpoint) == bool(args.onnx):
        raise ValueError("give exactly one of --checkpoint (a PyTorch checkpoint) or --onnx (an exported "
                         "generator, run with onnxruntime)")
    paths, root = label_files(args.labels)
    out_dir = Path(args.out)
    if out_dir.is_file():
        raise ValueError(f"--out {out_dir} is a file; give a folder")
    outputs = output_paths(paths, root, out_dir, args.ext)
    instances = None
    if args.instances:
        instances = [_instance_for(p, root, Path(args.instances)) for p in paths]
    palette = load_palette(args.palette) if args.palette else None
    model = MaskToImage.load(args.checkpoint or args.onnx, device=args.device, layout=layout_from_args(args),
                             encoder=args.encoder, **official_options(args))
    if model.layout.use_instance and instances is None:
        print("note: this model takes instance edges and no --instances folder was given: the class "
              "boundaries stand in for the instance boundaries")
    if args.style:
        model.style_code(args.style)  # fail on a wrong --style before the loop
    with tqdm(total=len(paths), desc="spade", unit="img") as bar:
        for start in range(0, len(paths), args.batch_size):
            chunk = slice(start, start + args.batch_size)
            images = model.generate(paths[chunk], instances[chunk] if instances else None, style=args.style,
                                    seed=args.seed + start, palette=palette, model_size=args.model_size)
            for image, target in zip(images, outputs[chunk]):
                save_image(image, target)
            bar.update(len(images))
    print(f"wrote {len(paths)} image(s) to {out_dir}")
    return 0
