"""The parameter-free normalizer factory.

Every conditional layer in condnorm standardises its input with a normalizer that has no
affine parameters of its own (the affine transform is what the condition predicts). This
module maps a name to such a normalizer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Union

from torch import nn

from .sync_batchnorm import SyncBatchNorm2d

__all__ = ["NORM_KINDS", "NormSpec", "is_batch_statistics", "make_norm"]

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
}
_ALIASES = {"bn": "batch", "syncbn": "syncbatch", "in": "instance", "ln": "layer",
            "gn": "group", "identity": "none"}
NORM_KINDS: tuple[str, ...] = tuple(_REGISTRY)


def _canonical(kind: str) -> str:
    key = kind.replace("_", "").replace("-", "").lower()
    for suffix in ("norm2d", "norm"):
        if key.endswith(suffix) and key != suffix:
            key = key[: -len(suffix)]
            break
    return _ALIASES.get(key, key)


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
    """Return True for normalizers that keep running statistics (what recalibration resets)."""
    return isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats

