"""OASIS building blocks: the U-Net segmentation discriminator, the (N+1)-class losses with LabelMix, 3-D noise.

Pure torch (plus :mod:`condnorm`'s input checks); the generator is a SPADE-family generator fed
``label_nc + z_dim`` channels (:func:`~models.oasis.noise.with_noise`; :class:`OASISGenerator` wraps it,
and takes the noise as an input when it is exported).
See ``docs/oasis.md``.
"""

from .discriminator import OASIS_D_WIDTHS, OASISDiscriminator, UNetResBlock
from .generator import OASISGenerator
from .losses import (
    BALANCE_MODES,
    LAMBDA_LABELMIX,
    class_balance_map,
    class_balance_weights,
    discriminator_loss,
    fake_index,
    generator_loss,
    labelmix,
    labelmix_loss,
    labelmix_mask,
    n1_cross_entropy,
    n1_target,
)
from .noise import NOISE_MODES, Z_DIM, concat_noise, draw_noise, pixel_noise, region_noise, with_noise

__all__ = [
    "BALANCE_MODES",
    "LAMBDA_LABELMIX",
    "NOISE_MODES",
    "OASIS_D_WIDTHS",
    "Z_DIM",
    "OASISDiscriminator",
    "OASISGenerator",
    "UNetResBlock",
    "class_balance_map",
    "class_balance_weights",
    "concat_noise",
    "discriminator_loss",
    "draw_noise",
    "fake_index",
    "generator_loss",
    "labelmix",
    "labelmix_loss",
    "labelmix_mask",
    "n1_cross_entropy",
    "n1_target",
    "pixel_noise",
    "region_noise",
    "with_noise",
]
