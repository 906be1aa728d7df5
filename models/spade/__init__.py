"""SPADE reference networks: generator, VAE encoder, multiscale discriminator and their blocks."""

from .blocks import ModulatedResBlock, maybe_spectral_norm, xavier_init_
from .discriminator import MultiscaleDiscriminator, NLayerDiscriminator
from .encoder import ConvEncoder, reparameterize
from .generator import NUM_UPSAMPLINGS, ModulatedGenerator, SPADEGenerator

__all__ = [
    "NUM_UPSAMPLINGS",
    "ConvEncoder",
    "ModulatedGenerator",
    "ModulatedResBlock",
    "MultiscaleDiscriminator",
    "NLayerDiscriminator",
    "SPADEGenerator",
    "maybe_spectral_norm",
    "reparameterize",
    "xavier_init_",
]
