"""Region style swap demo: train a tiny RAIN generator on tinted shapes, save a swap grid.

    python -m models.app.demos.region_styles                 # trains 250 steps: ~2 min on an idle 2-core CPU
    python -m models.app.demos.region_styles --checkpoint runs/rain_shapes/.../last.ckpt --out swap.png

The shapes data gives every class one fixed colour, so there would be no style to swap; here
every region of every image gets its own random tint (:class:`RegionTints`), which the
generator can only reproduce from the region's code. Without ``--checkpoint`` a tiny
generator learns that by reconstruction alone (L1 to the image it encodes: SEAN's objective
without the GAN and perceptual terms, which take much longer on a CPU); it learns the tints
only in part in so few steps. Each grid row is one validation image (the target) and the
previous one (the donor). Columns: label │ target │ reconstruction from its own codes │ donor │
the target with the donor's code for the sky │ for the ground │ for the shapes │ for every
region (the donor's codes where the donor has the region) │ then the change maps
``4·max_c |swap − reconstruction|`` of the sky, ground and shapes swaps: only the swapped
regions (and a few pixels around them) should change.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from condnorm.functional import labels_to_onehot
from models.data.io import save_grid
from models.data.palette import colorize_labels
from models.data.semantic_datamodule import SemanticDataModule
from models.data.shapes import SHAPES_CLASSES
from models.sean import SEANGenerator

from ..checkpoint import load_generator

__all__ = ["RegionTints", "main", "region_swap_columns", "tinted_shapes", "train_reconstruction"]

SWAPS = {"sky": [0], "ground": [1], "shapes": list(range(2, len(SHAPES_CLASSES))),
         "all": list(range(len(SHAPES_CLASSES)))}


class RegionTints(Dataset):
    """Samples of ``base`` recoloured: ``keep · image + tint``, one random RGB tint per image and class."""

    def __init__(self, base: Dataset, num_classes: int, *, strength: float = 0.6, keep: float = 0.4,
                 seed: int = 0) -> None:
        self.base, self.num_classes, self.seed = base, num_classes, seed
        self.strength, self.keep = strength, keep

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        sample = dict(self.base[index])
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        tints = (torch.rand(self.num_classes, 3, generator=g) * 2 - 1) * self.strength
        tint = tints[sample["label"]].permute(2, 0, 1)
        sample["image"] = (self.keep * sample["image"] + tint).clamp(-1, 1)
        return sample


def tinted_shapes(size: int, num_train: int, num_val: int, batch_size: int) -> SemanticDataModule:
    """The shapes DataModule (no instance maps) with :class:`RegionTints` on both splits."""
    dm = SemanticDataModule("shapes", crop_size=size, num_train=num_train, num_val=num_val,
                            batch_size=batch_size, num_workers=0, no_instance=True)
    dm.setup("fit")
    dm.train_set = RegionTints(dm.train_set, dm.layout.label_nc)
    dm.val_set = RegionTints(dm.val_set, dm.layout.label_nc, seed=1)
    return dm


@torch.no_grad()
def region_swap_columns(generator: SEANGenerator, seg: Tensor, images: Tensor, labels: Tensor,
                        swaps: dict[str, Sequence[int]], seed: int = 0) -> list[Tensor]:
    """Grid columns (``(N, 3, H, W)`` in [0, 1]) for targets ``images`` and donors ``images.roll(1)``.

    A swapped region takes the donor's code only where the donor has that region.
    """
    def generate(codes: Tensor) -> Tensor:
        return (generator(seg, style_codes=codes, noise=torch.Generator().manual_seed(seed)) + 1) / 2

    codes, present = generator.Zencoder.encode_regions(images, seg)
    donor_codes, donor_present = codes.roll(1, 0), present.roll(1, 0)
    own = generate(codes)
    donors = (images.roll(1, 0) + 1) / 2
    columns = [colorize_labels(labels, generator.label_nc), (images + 1) / 2, own, donors]
    changes = []
    for regions in swaps.values():
        take = torch.zeros_like(present)
        take[:, list(regions)] = True
        take &= donor_present
        swapped = generate(torch.where(take[..., None], donor_codes, codes))
        columns.append(swapped)
        changes.append((swapped - own).abs().amax(1, keepdim=True).mul(4).expand(-1, 3, -1, -1))
    return columns + changes[:-1]  # the change maps of all but the last (all-regions) swap


def train_reconstruction(steps: int, *, size: int = 64, lr: float = 2e-3, seed: int = 0) -> SEANGenerator:
    """A tiny RAIN generator trained ``steps`` batches to reconstruct tinted shapes from their codes."""
    torch.manual_seed(seed)
    dm = tinted_shapes(size, num_train=512, num_val=1, batch_size=8)
    generator = SEANGenerator(dm.layout.label_nc, ngf=8, style_dim=32, crop_size=size, norm="batch", hidden=32,
                              encoder_ngf=8)
    opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    batches = (b for _ in range(steps) for b in dm.train_dataloader())
    for step, batch in zip(range(steps), batches):
        seg = labels_to_onehot(batch["label"], dm.layout.label_nc)
        loss = (generator(seg, style_image=batch["image"]) - batch["image"]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step}: L1 {loss.item():.3f}")
    return generator.eval()


def main(argv: list[str] | None = None) -> Path:
    """Parse options, train (or load) a RAIN generator, write the grid; returns its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a rain Lightning checkpoint on shapes (skips training)")
    parser.add_argument("--steps", type=int, default=250, help="training steps without --checkpoint")
    parser.add_argument("--out", default="runs/sean_demo/region_swap.png")
    parser.add_argument("--rows", type=int, default=6)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.checkpoint:
        generator = load_generator(args.checkpoint)[0]
    else:
        generator = train_reconstruction(args.steps)
    if not isinstance(generator, SEANGenerator):
        raise ValueError(f"{args.checkpoint}: not a RAIN (SEAN) generator")
    dm = tinted_shapes(generator.output_size[1], num_train=1, num_val=args.rows, batch_size=args.rows)
    batch = next(iter(dm.val_dataloader()))
    seg = labels_to_onehot(batch["label"], generator.label_nc)
    columns = region_swap_columns(generator, seg, batch["image"], batch["label"], SWAPS)
    path = save_grid(columns, out)
    names = list(SWAPS)
    print(f"wrote {path}: label | target | reconstruction | donor | " +
          " | ".join(f"{name} from donor" for name in names) + " | " +
          " | ".join(f"change ({name}) x4" for name in names[:-1]))
    return path


if __name__ == "__main__":
    main()
