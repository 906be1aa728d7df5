"""condnorm: conditional normalization layers for generative models.

A conditional normalization layer is ``modulate(normalize(x), condition)``: a parameter-free
normalizer (:func:`make_norm`; the statistics and standardisation branches' normalizers live in
:mod:`condnorm.norms`) followed by a scale and shift predicted from a condition.
"""

from . import functional, norms
from .adacon import AdaCoN, AdaptiveConvNorm2d
from .adain import AdaIN, AdaptiveInstanceNorm2d
from .cbn import CBN, ConditionalBatchNorm2d
from .cin import CIN, ConditionalInstanceNorm2d
from .clade import CLADE, ClassAdaptiveNorm2d
from .convert import convert, convert_sync_batchnorm, recalibrate, revert_sync_batchnorm
from .functional import adain, calc_mean_std, mix_table, modulate, region_average_pool, region_broadcast
from .norm import NORM_KINDS, make_norm
from .rain import RAIN, SEAN, RegionAdaptiveNorm2d
from .self_conditioned import AttentiveNorm2d, InstanceEnhancementBatchNorm2d
from .semantic_map import LabelWindows, SemanticMap, label_conv2d, label_windows
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
    "LabelWindows",
    "RegionAdaptiveNorm2d",
    "SemanticMap",
    "SpatiallyAdaptiveNorm2d",
    "SyncBatchNorm2d",
    "adain",
    "calc_mean_std",
    "convert",
    "convert_sync_batchnorm",
    "functional",
    "label_conv2d",
    "label_windows",
    "make_norm",
    "mix_table",
    "modulate",
    "norms",
    "recalibrate",
    "region_average_pool",
    "region_broadcast",
    "revert_sync_batchnorm",
]
__version__ = "0.1.0"
