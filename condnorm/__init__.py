"""condnorm: conditional normalization layers for generative models.

A conditional normalization layer is ``modulate(normalize(x), condition)``: a parameter-free
normalizer (:func:`make_norm`; the statistics and standardisation branches' normalizers live in
:mod:`condnorm.norms`) followed by a scale and shift predicted from a condition.

``__all__`` is the public API: the layers (long names and aliases), ``make_norm``, the model
helpers, :class:`SemanticMap` and the main functions; everything else of
:mod:`condnorm.functional` is reached through it, and the fast-path internals
(:mod:`condnorm.semantic_map`, :mod:`condnorm.autograd`, :mod:`condnorm.graph_mode`) by module.
"""

from . import functional, norms
from .adacon import AdaCoN, AdaptiveConvNorm2d
from .adagn import AdaGN, AdaptiveGroupNorm
from .adain import AdaIN, AdaptiveInstanceNorm2d
from .adaln import AdaLN, AdaptiveLayerNorm, AdaRMSNorm, ConditionalLayerNorm
from .adaln_zero import AdaLNSingle, AdaLNZero, TokenAdaLN
from .cbn import CBN, ConditionalBatchNorm2d
from .cin import CIN, ConditionalInstanceNorm2d
from .clade import CLADE, ClassAdaptiveNorm2d
from .convert import convert, convert_sync_batchnorm, recalibrate, revert_sync_batchnorm
from .film import FiLM
from .functional import adain, calc_mean_std, film, modulate, modulated_conv2d, region_average_pool
from .modulated_conv import EqualLinear, ModulatedConv2d
from .norm import NORM_KINDS, make_norm
from .rain import RAIN, SEAN, RegionAdaptiveNorm2d
from .self_conditioned import AttentiveNorm2d, InstanceEnhancementBatchNorm2d
from .semantic_map import SemanticMap
from .spade import SPADE, SpatiallyAdaptiveNorm2d
from .spatial_gn import SPADEGroupNorm, SpatialNorm
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
    "AdaGN",
    "AdaIN",
    "AdaLN",
    "AdaLNSingle",
    "AdaLNZero",
    "AdaRMSNorm",
    "AdaptiveConvNorm2d",
    "AdaptiveGroupNorm",
    "AdaptiveInstanceNorm2d",
    "AdaptiveLayerNorm",
    "AttentiveNorm2d",
    "ClassAdaptiveNorm2d",
    "ConditionalBatchNorm2d",
    "ConditionalInstanceNorm2d",
    "ConditionalLayerNorm",
    "EqualLinear",
    "FiLM",
    "InstanceEnhancementBatchNorm2d",
    "ModulatedConv2d",
    "RegionAdaptiveNorm2d",
    "SPADEGroupNorm",
    "SemanticMap",
    "SpatialNorm",
    "SpatiallyAdaptiveNorm2d",
    "SyncBatchNorm2d",
    "TokenAdaLN",
    "adain",
    "calc_mean_std",
    "convert",
    "convert_sync_batchnorm",
    "film",
    "functional",
    "make_norm",
    "modulate",
    "modulated_conv2d",
    "norms",
    "recalibrate",
    "region_average_pool",
    "revert_sync_batchnorm",
]
__version__ = "0.1.0"
