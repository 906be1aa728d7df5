"""A tiny SDM checkpoint with random (non-zero) weights for the inference, evaluation and export tests."""

from __future__ import annotations

from pathlib import Path

import torch

from models.data.label_layout import LabelLayout
from models.lit.diffusion import DiffusionModule

SHAPES = LabelLayout(6, use_instance=True, dataset_mode="shapes")
UNET = {"model_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_ds": [2], "head_channels": 8,
        "num_groups": 4, "spade_hidden": 8}


def sdm_checkpoint(tmp: Path, name: str = "sdm.ckpt", **hparams: object) -> Path:
    """A Lightning-style checkpoint of a 16×16 SDM whose EMA denoiser has small random weights."""
    module = DiffusionModule(crop_size=16, aspect_ratio=1.0, unet=UNET, sample_steps=3, timesteps=100,
                             **{**SHAPES.to_dict(), **hparams})
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.denoiser_ema.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    path = tmp / name
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path
