"""The normalizers of the statistics and standardisation branches, one file per family.

Each is reachable by name from :func:`condnorm.make_norm` (and so from every conditional
layer's ``norm=``); see :data:`condnorm.NORM_KINDS`. Those that need extra input (a region
mask, a domain id, the previous layer's statistics) take it as keyword arguments of
``forward``, which the conditional layers pass on unchanged (:func:`condnorm.norm.apply_norm`).
"""

from ._base import Normalizer2d, RunningStatsNorm2d
from .adaptive_batch import AdaptiveBatchNorm2d
from .batch_variants import ExtendedBatchNorm2d, L1BatchNorm2d
from .channel import ChannelNorm2d
from .cosine import CosineNorm2d
from .cross_iteration import CrossIterationBatchNorm2d
from .domain import DomainSpecificBatchNorm2d
from .frn import FilterResponseNorm2d
from .kalman import KalmanNorm2d
from .local_context import LocalContextNorm2d, local_context_norm
from .region import LearnedRegionNorm2d, RegionNorm2d, region_norm
from .switchable import SparseSwitchableNorm2d, SwitchableNorm2d, sparsemax

__all__ = [
    "AdaptiveBatchNorm2d",
    "ChannelNorm2d",
    "CosineNorm2d",
    "CrossIterationBatchNorm2d",
    "DomainSpecificBatchNorm2d",
    "ExtendedBatchNorm2d",
    "FilterResponseNorm2d",
    "KalmanNorm2d",
    "L1BatchNorm2d",
    "LearnedRegionNorm2d",
    "LocalContextNorm2d",
    "Normalizer2d",
    "RegionNorm2d",
    "RunningStatsNorm2d",
    "SparseSwitchableNorm2d",
    "SwitchableNorm2d",
    "local_context_norm",
    "region_norm",
    "sparsemax",
]
