"""The parameter-free normalizer factory.

Every conditional layer in condnorm standardises its input with a normalizer that has no
affine parameters of its own (the affine transform is what the condition predicts). This
module maps a name to such a normalizer.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, Union

from torch import Tensor, nn

from . import norms
from .graph_mode import capturing_graph
from .sync_batchnorm import SyncBatchNorm2d

__all__ = ["NORM_KINDS", "PARAMETER_FREE_KINDS", "NormSpec", "apply_norm", "is_batch_statistics", "make_norm"]

NormSpec = Union[str, Callable[..., nn.Module], None]  # noqa: UP007 (runtime alias)


def _batch(num_features: int, **kw: Any) -> nn.Module:
    return nn.BatchNorm2d(num_features, affine=False, **kw)


def _syncbatch(num_features: int, **kw: Any) -> nn.Module:
    return SyncBatchNorm2d(num_features, affine=False, **kw)


def _instance(num_features: int, **kw: Any) -> nn.Module:
    return nn.InstanceNorm2d(num_features, affine=False, **kw)


def _layer(num_features: int, **kw: Any) -> nn.Module:
    # LayerNorm over (C, H, W) of an (N, C, H, W) map, independent of the spatial size.
    return nn.GroupNorm(1, num_features, affine=False, **kw)


def _group(num_features: int, num_groups: int | None = None, **kw: Any) -> nn.Module:
    groups = math.gcd(32, num_features) if num_groups is None else num_groups
    if num_features % groups:
        raise ValueError(f"make_norm('group'): num_features={num_features} is not divisible by "
                         f"num_groups={groups}; pass num_groups that divides it")
    return nn.GroupNorm(groups, num_features, affine=False, **kw)


def _none(num_features: int, **kw: Any) -> nn.Module:
    return nn.Identity()


_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "batch": _batch,
    "syncbatch": _syncbatch,
    "instance": _instance,
    "layer": _layer,
    "group": _group,
    "none": _none,
    # the statistics branch (condnorm.norms)
    "switchable": norms.SwitchableNorm2d,
    "sparse_switchable": norms.SparseSwitchableNorm2d,
    "region": norms.RegionNorm2d,
    "region_learned": norms.LearnedRegionNorm2d,
    "local_context": norms.LocalContextNorm2d,
    "split": norms.DomainSpecificBatchNorm2d,
    "domain_specific": norms.DomainSpecificBatchNorm2d,
    "cross_iteration": norms.CrossIterationBatchNorm2d,
    "channel": norms.ChannelNorm2d,
    # the standardisation branch
    "frn": norms.FilterResponseNorm2d,
    "extended_batch": norms.ExtendedBatchNorm2d,
    "l1_batch": norms.L1BatchNorm2d,
    "kalman": norms.KalmanNorm2d,
    "cosine": norms.CosineNorm2d,
    "adaptive_batch": norms.AdaptiveBatchNorm2d,
}
_ALIASES = {"bn": "batch", "syncbn": "syncbatch", "in": "instance", "ln": "layer",
            "gn": "group", "identity": "none", "sn": "switchable", "ssn": "sparseswitchable",
            "rn": "region", "rnb": "region", "rnl": "regionlearned", "learnedregion": "regionlearned",
            "lcn": "localcontext", "splitbatch": "split", "splitbn": "split", "dsbn": "domainspecific",
            "domainspecificbatch": "domainspecific", "crossiterationbatch": "crossiteration",
            "filterresponse": "frn", "ebn": "extendedbatch",
            "l1bn": "l1batch", "kn": "kalman"}
NORM_KINDS: tuple[str, ...] = tuple(_REGISTRY)
PARAMETER_FREE_KINDS: tuple[str, ...] = NORM_KINDS[:6]
"""The kinds with no parameters and no context at all (the rest keep their method's own parameters)."""
_BY_KEY = {kind.replace("_", ""): kind for kind in NORM_KINDS}


def _canonical(kind: str) -> str:
    key = kind.replace("_", "").replace("-", "").lower()
    for suffix in ("norm2d", "norm"):
        if key.endswith(suffix) and key != suffix:
            key = key[: -len(suffix)]
            break
    return _BY_KEY.get(_ALIASES.get(key, key), key)


def make_norm(kind: NormSpec, num_features: int, **kw: Any) -> nn.Module:
    """Build a parameter-free normalizer for ``(N, C, H, W)`` feature maps.

    ============  =========================================================  ==============
    kind          module                                                     running stats
    ============  =========================================================  ==============
    ``batch``     ``BatchNorm2d(C, affine=False)``                           yes
    ``syncbatch`` ``SyncBatchNorm2d(C, affine=False)``, synced in DDP        yes
    ``instance``  ``InstanceNorm2d(C, affine=False)``                        no (opt-in)
    ``layer``     ``GroupNorm(1, C, affine=False)``: statistics over C, H, W  no
    ``group``     ``GroupNorm(G, C, affine=False)``, G = gcd(32, C) default   no
    ``none``      ``Identity``                                               no
    ============  =========================================================  ==============

    The statistics and standardisation branches (:mod:`condnorm.norms`; their own learned
    parameters, such as switch weights or FRN's τ, stay; ``affine=False`` by default):

    =====================  ==========================================  ==============  ===============
    kind                   module                                      running stats   context
    =====================  ==========================================  ==============  ===============
    ``switchable``         ``SwitchableNorm2d`` (IN/LN/BN, softmax)    yes (BN part)
    ``sparse_switchable``  ``SparseSwitchableNorm2d`` (sparsestmax)    yes (BN part)
    ``region``             ``RegionNorm2d`` (RN-B)                     no              ``mask``
    ``region_learned``     ``LearnedRegionNorm2d`` (RN-L)              no
    ``local_context``      ``LocalContextNorm2d``                      no
    ``split``              ``DomainSpecificBatchNorm2d`` (2 domains)   yes, per domain ``domain``
    ``domain_specific``    ``DomainSpecificBatchNorm2d``               yes, per domain ``domain``
    ``cross_iteration``    ``CrossIterationBatchNorm2d``               yes             optional ``conv``,
                                                                                       ``conv_input``
    ``channel``            ``ChannelNorm2d``                           no
    ``frn``                ``FilterResponseNorm2d`` (+ TLU)            no
    ``extended_batch``     ``ExtendedBatchNorm2d``                     yes
    ``l1_batch``           ``L1BatchNorm2d``                           yes
    ``kalman``             ``KalmanNorm2d``                            yes             ``prev_mean``,
                                                                                       ``prev_var``
    ``cosine``             ``CosineNorm2d`` (owns its C→C filters)     no
    ``adaptive_batch``     ``AdaptiveBatchNorm2d`` (``a x + b BN(x)``) yes (its ``bn``)
    =====================  ==========================================  ==============  ===============

    Names are case- and underscore-insensitive and accept the usual short forms
    (``bn``, ``in``, ``ln``, ``gn``, ``syncbn``, ``BatchNorm2d``). A class or
    ``functools.partial`` is called as ``kind(num_features, **kw)``; ``None`` gives Identity.

    Args:
        kind: the normalizer's name, a callable, or None.
        num_features: C, the number of channels.
        **kw: passed to the module (``eps``, ``momentum``, ``num_groups``, ``device``, ``dtype``).

    Returns:
        The normalizer module.

    Raises:
        ValueError: for an unknown name (the message lists the choices).

    Example:
        >>> import torch
        >>> bn = make_norm("batch", 8)
        >>> type(bn).__name__, bn.affine, bn.track_running_stats
        ('BatchNorm2d', False, True)
        >>> gn = make_norm("GroupNorm", 64)
        >>> gn.num_groups, gn.affine
        (32, False)
        >>> make_norm("instance", 8)(torch.randn(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """
    if kind is None:
        return nn.Identity()
    if isinstance(kind, str):
        builder = _REGISTRY.get(_canonical(kind))
        if builder is None:
            raise ValueError(f"make_norm: unknown kind {kind!r}; choose one of "
                             f"{', '.join(NORM_KINDS)} (or pass a module class / partial)")
        return builder(num_features, **kw)
    if isinstance(kind, functools.partial):
        return kind(num_features, **{**kind.keywords, **kw})
    if callable(kind):
        return kind(num_features, **kw)
    raise TypeError(f"make_norm: kind must be a str, a callable or None, got {type(kind).__name__}")


def is_batch_statistics(module: nn.Module) -> bool:
    """Return True for normalizers that keep running statistics (what recalibration resets).

    Example:
        >>> is_batch_statistics(make_norm("batch", 4)), is_batch_statistics(make_norm("switchable", 4))
        (True, True)
        >>> is_batch_statistics(make_norm("frn", 4)), is_batch_statistics(make_norm("instance", 4))
        (False, False)
    """
    kinds = (nn.modules.batchnorm._NormBase, norms.RunningStatsNorm2d)
    return isinstance(module, kinds) and module.track_running_stats


def apply_norm(norm: nn.Module, x: Tensor, context: Mapping[str, Any]) -> Tensor:
    """Call a conditional layer's normalizer, passing the layer's extra keywords on unchanged.

    The one way extra input reaches a normalizer: a conditional layer's ``forward(x, cond,
    **norm_kwargs)`` hands ``norm_kwargs`` (a region ``mask=``, a ``domain=`` id, the previous
    layer's ``prev_mean=``/``prev_var=``, the preceding ``conv=``/``conv_input=``) to
    ``norm(x, **norm_kwargs)``; without any, ``norm(x)``.

    Raises:
        TypeError: if the normalizer takes no such keyword (the message names it and the keywords).

    Example:
        >>> import torch
        >>> rn = make_norm("region", 4)
        >>> apply_norm(rn, torch.randn(2, 4, 3, 3), {"mask": torch.ones(2, 1, 3, 3)}).shape
        torch.Size([2, 4, 3, 3])
        >>> apply_norm(make_norm("batch", 4), torch.randn(2, 4, 3, 3), {"mask": None})
        Traceback (most recent call last):
        ...
        TypeError: BatchNorm2d does not accept the normalizer context mask=; only the kinds that need...
    """
    if not context:
        return norm(x)
    if not capturing_graph():
        try:
            inspect.signature(norm.forward).bind(x, **context)
        except TypeError:
            raise TypeError(f"{type(norm).__name__} does not accept the normalizer context "
                            f"{', '.join(k + '=' for k in context)}; only the kinds that need context "
                            "do (region: mask=, split/domain_specific: domain=, kalman: prev_mean=, "
                            "prev_var=, cross_iteration: conv=, conv_input=)") from None
    return norm(x, **context)
