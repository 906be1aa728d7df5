"""SEAN reference networks: the region style encoder and the region-adaptive generator."""

from .encoder import StyleEncoder
from .generator import SEANGenerator

__all__ = ["SEANGenerator", "StyleEncoder"]
