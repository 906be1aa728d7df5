"""A grid of every style-transfer control, one row per content image.

    python -m models.app.demos.adain_controls --out runs/adain_controls.png  # trains a tiny decoder first
    python -m models.app.demos.adain_controls --checkpoint runs/adain/.../last.ckpt --content a.jpg b.jpg \
        --style s1.jpg s2.jpg --out controls.png
    python -m models.app.demos.adain_controls --vgg vgg_normalised.pth --decoder decoder.pth --content ... --style ...

Columns: content │ style A │ style B │ A at α=1 │ A at α=0.5 │ A with CORAL colour preservation │
A on luminance only │ 50/50 interpolation of A and B │ mask: A on the left half, B on the right.
Without weights or a checkpoint, a decoder is trained for a few hundred steps on procedural images
(a random VGG encoder; a couple of minutes on a CPU) so the grid shows the controls working,
not the quality of the published model.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor

from models.adain import StyleTransfer
from models.data.io import list_images, load_rgb, save_grid
from models.data.style_folders import ContentStyleDataModule, make_synthetic_folders
from models.lit.style_transfer import StyleTransferModule

from ..checkpoint import load_style_transfer

__all__ = ["control_columns", "main"]


def control_columns(net: StyleTransfer, content: Tensor, style_a: Tensor, style_b: Tensor) -> list[Tensor]:
    """The grid's columns for a batch of contents (``(N, 3, H, W)`` in [0, 1]) and two styles."""
    n, _, h, w = content.shape
    a, b = style_a.expand(n, -1, -1, -1), style_b.expand(n, -1, -1, -1)
    mask = torch.zeros(n, 1, h, w)
    mask[..., : w // 2] = 1.0  # first style on the left
    with torch.no_grad():
        return [content, _fit(a, h, w), _fit(b, h, w),
                net.transfer(content, a),
                net.transfer(content, a, alpha=0.5),
                net.transfer(content, a, preserve_color="coral"),
                net.transfer(content, a, preserve_color="luminance"),
                net.transfer(content, [a, b], style_weights=[0.5, 0.5]),
                net.transfer(content, [a, b], mask=mask)]


def _fit(image: Tensor, h: int, w: int) -> Tensor:
    return torch.nn.functional.interpolate(image, size=(h, w), mode="bilinear", align_corners=False)


def _train_tiny(root: Path, steps: int) -> StyleTransfer:
    content_dir, style_dir = make_synthetic_folders(root, num_content=32, num_style=8, size=(72, 96))
    data = ContentStyleDataModule(str(content_dir), str(style_dir), load_size=72, crop_size=64,
                                  batch_size=4, num_workers=0, num_val=0)
    module = StyleTransferModule(encoder_weights=None, lr=5e-4)
    pl.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
               enable_model_summary=False, default_root_dir=root).fit(module, datamodule=data)
    return module.net.eval()


def main(argv: list[str] | None = None) -> Path:
    """Build the network, run every control and save the grid; returns its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a StyleTransferModule checkpoint")
    parser.add_argument("--vgg", help="AdaIN's vgg_normalised.pth (with --decoder)")
    parser.add_argument("--decoder", help="AdaIN's decoder.pth (with --vgg)")
    parser.add_argument("--content", nargs="+", help="content images (default: procedural ones)")
    parser.add_argument("--style", nargs=2, help="two style images (default: procedural ones)")
    parser.add_argument("--size", type=int, default=96, help="side of the square content crops")
    parser.add_argument("--steps", type=int, default=300, help="training steps without weights")
    parser.add_argument("--out", default="runs/adain_controls.png")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.checkpoint or args.vgg:
            net = load_style_transfer(checkpoint=args.checkpoint, vgg=args.vgg, decoder=args.decoder)
        else:
            net = _train_tiny(root / "train", args.steps)
        content_dir, style_dir = make_synthetic_folders(root / "show", num_content=3, num_style=2,
                                                        size=(args.size, args.size), seed=1)
        contents = [Path(p) for p in args.content] if args.content else list_images(content_dir)
        styles = [Path(p) for p in args.style] if args.style else list_images(style_dir)[:2]
        content = torch.stack([_fit(load_rgb(p)[None], args.size, args.size)[0] for p in contents])
        columns = control_columns(net, content, *(load_rgb(p)[None] for p in styles))
        path = save_grid(columns, args.out)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
