"""Tiny untrained models written as files, shared by the application tests."""

from __future__ import annotations

from pathlib import Path

import torch

from models.data.label_layout import LabelLayout
from models.lit.mask_to_image import MaskToImageModule

__all__ = ["TINY", "TINY_OASIS", "tiny_checkpoint", "tiny_rain_checkpoint"]

TINY = dict(ngf=4, ndf=4, num_D=1, n_layers_D=2, norm_G="batch", lambda_vgg=0.0, lpips=False, crop_size=32,
            aspect_ratio=1.0)
"""Hyperparameters of a 4-channel SPADE generator at 32 px (and a one-scale discriminator)."""

TINY_OASIS = dict(discriminator="oasis", n_blocks_D=3, z_dim=8, lambda_feat=0.0)
"""Overrides of :data:`TINY` for an OASIS-trained generator (8 noise channels)."""


def tiny_checkpoint(tmp: Path, layout: LabelLayout, name: str = "model.ckpt", **hparams: object) -> Path:
    """A Lightning-format checkpoint of an untrained tiny generator recording ``layout`` (``hparams`` override TINY)."""
    torch.manual_seed(0)
    module = MaskToImageModule(**{**TINY, **hparams}, **layout.to_dict())
    path = tmp / name
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def tiny_rain_checkpoint(tmp: Path, layout: LabelLayout, name: str = "rain.ckpt") -> Path:
    """A Lightning-format checkpoint of an untrained tiny RAIN generator (8 channels, style codes of 8)."""
    return tiny_checkpoint(tmp, layout, name, ngf=8, generator="rain", style_dim=8)
