"""condnorm: conditional normalization layers for generative models.

A conditional normalization layer is ``modulate(normalize(x), condition)``: a parameter-free
normalizer (:func:`make_norm`) followed by a scale and shift predicted from a condition.
"""

from . import functional
from .functional import adain, calc_mean_std, modulate
from .norm import NORM_KINDS, make_norm
from .spade import SPADE

__all__ = [
    "NORM_KINDS",
    "SPADE",
    "adain",
    "calc_mean_std",
    "functional",
    "make_norm",
    "modulate",
]
__version__ = "0.1.0"
