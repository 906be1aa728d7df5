"""condnorm: conditional normalization layers for generative models.

A conditional normalization layer is ``modulate(normalize(x), condition)``: a parameter-free
normalizer (:func:`make_norm`) followed by a scale and shift predicted from a condition.

``__all__`` is the public API: the layers (long names and aliases), ``make_norm``, the model
helpers, :class:`SemanticMap` and the main functions; everything else of
:mod:`condnorm.functional` is reached through it, and the fast-path internals
(:mod:`condnorm.semantic_map`, :mod:`condnorm.autograd`, :mod:`condnorm.graph_mode`) by module.
"""

from . import functional
from .adacon import AdaCoN, AdaptiveConvNorm2d
from .adain import AdaIN, AdaptiveInstanceNorm2d
from .cbn import CBN, ConditionalBatchNorm2d
from .cin import CIN, ConditionalInstanceNorm2d
from .clade import CLADE, ClassAdaptiveNorm2d
from .convert import convert, convert_sync_batchnorm, recalibrate, revert_sync_batchnorm
from .functional import adain, calc_mean_std, modulate, region_average_pool
from .norm import NORM_KINDS, make_norm
from .rain import RAIN, SEAN, RegionAdaptiveNorm2d
from .self_conditioned import AttentiveNorm2d, InstanceEnhancementBatchNorm2d
from .semantic_map import SemanticMap
from .spade import SPADE, SpatiallyAdaptiveNorm2d
from .sync_batchnorm import SyncBatchNorm2d

__all__ = [
    "CBN",
    "CIN",
    "CLADE",
    "NORM_KINDS",
    "RAIN",
    "SEAN",
    "SPADE",
    "AdaCoN",
    "AdaIN",
    "AdaptiveConvNorm2d",
    "AdaptiveInstanceNorm2d",
    "AttentiveNorm2d",
    "ClassAdaptiveNorm2d",
    "ConditionalBatchNorm2d",
    "ConditionalInstanceNorm2d",
    "InstanceEnhancementBatchNorm2d",
    "RegionAdaptiveNorm2d",
    "SemanticMap",
    "SpatiallyAdaptiveNorm2d",
    "SyncBatchNorm2d",
    "adain",
    "calc_mean_std",
    "convert",
    "convert_sync_batchnorm",
    "functional",
    "make_norm",
    "modulate",
    "recalibrate",
    "region_average_pool",
    "revert_sync_batchnorm",
]
__version__ = "0.1.0"
