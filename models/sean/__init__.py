"""SEAN reference networks: the region style encoder and the region-adaptive generator."""

from .encoder import StyleEncoder
from .generator import NoisySPADE, SEANGenerator

__all__ = ["NoisySPADE", "SEANGenerator", "StyleEncoder"]
