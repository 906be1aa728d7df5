"""``infer.py sdm``: label maps in, DDIM samples of an SDM diffusion model out (``name_s0.png``, ``name_s1.png``, …).

A thin shell over :class:`~models.app.MaskToImage` (which loads SDM checkpoints and exported
denoisers as a :class:`~models.sdm.DDIMSampler`). Label files are read through the model's label
contract; outputs mirror the input tree under ``--out`` at each mask's size, sample ``k`` of
``x.png`` is ``x_s{k}.png``, and sample ``k`` of the ``j``-th mask starts from noise seeded
``seed + k·N + j`` (the numbering of ``infer.py evaluate``). Every option is checked before sampling starts.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from tqdm import tqdm

from models.data.io import output_paths, save_image
from models.data.palette import load_palette
from models.sdm import DDIMSampler, ddim_timesteps

from ..mask_to_image import MaskToImage
from .options import finite_float, image_ext, non_negative_float, positive_int
from .spade import label_files

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``infer.py sdm``."""
    parser.add_argument("--checkpoint", required=True,
                        help="SDM Lightning .ckpt from train.py (configs/sdm_*.yaml), or its exported denoiser "
                             "(infer.py export --task sdm --format onnx)")
    parser.add_argument("--labels", required=True, help="a label map (PNG of ids) or a folder of them "
                                                      "(searched recursively)")
    parser.add_argument("--out", required=True, help="output folder; images mirror the input tree as NAME_s<k>.EXT")
    parser.add_argument("--steps", type=positive_int, help="DDIM steps (default: the model's sample_steps)")
    parser.add_argument("--guidance", type=finite_float,
                        help="classifier-free guidance scale s, SDM's convention: eps = eps(zero mask) + "
                             "s * (eps(mask) - eps(zero mask)); 1 = conditional model only, 0 = unconditional, "
                             ">1 follows the mask more (the paper samples ADE20K with 1.5). Default: the model's")
    parser.add_argument("--eta", type=non_negative_float, default=0.0, help="DDIM eta (0: deterministic)")
    parser.add_argument("--samples", type=positive_int, default=1, help="samples per mask (different noise)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the starting noise")
    parser.add_argument("--palette", help="palette file for colour masks (default: the one the model was trained with)")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ext", type=image_ext, default="png", help="output image format (png, jpg, bmp, webp, tif)")
    parser.add_argument("--model-size", action="store_true",
                        help="keep the model's output size instead of resizing to each label map's size")


def _advance(bar: tqdm, images: int, _step: int) -> None:
    """One DDIM step of ``images`` images done."""
    bar.update(images)


def run(args: argparse.Namespace) -> int:
    """Write ``--samples`` images per label map; returns 0."""
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint} does not exist")
    paths, root = label_files(args.labels)
    out_dir = Path(args.out)
    if out_dir.is_file():
        raise ValueError(f"--out {out_dir} is a file; give a folder")
    outputs = [output_paths(paths, root, out_dir, args.ext, suffix=f"_s{k}") for k in range(args.samples)]
    palette = load_palette(args.palette) if args.palette else None
    model = MaskToImage.load(args.checkpoint, device=args.device)
    sampler = model.generator
    if not isinstance(sampler, DDIMSampler):
        raise ValueError(f"--checkpoint {args.checkpoint} is not an SDM diffusion model; use infer.py spade")
    if args.steps is not None:
        sampler.steps = args.steps
    if args.guidance is not None:
        sampler.guidance = args.guidance
    sampler.eta = args.eta
    ddim_timesteps(sampler.schedule.timesteps, sampler.steps)  # refuse --steps beyond the model's before sampling
    count = len(paths)
    with tqdm(total=count * args.samples * sampler.steps, desc="sdm", unit="img·step") as bar:
        for start in range(0, count, args.batch_size):
            chunk = slice(start, start + args.batch_size)
            ids = [model.read_labels(p, palette) for p in paths[chunk]]
            sampler.progress = functools.partial(_advance, bar, len(ids))
            for k in range(args.samples):
                images = model.generate_ids(ids, seed=args.seed + k * count + start, model_size=args.model_size)
                for image, target in zip(images, outputs[k][chunk]):
                    save_image(image, target)
    print(f"wrote {count * args.samples} image(s) to {out_dir}")
    return 0
