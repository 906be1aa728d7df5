"""Model helpers: swap the normalizers of a model, SyncBatchNorm for DDP, re-estimate statistics."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.instancenorm import _InstanceNorm

from .norm import is_batch_statistics, make_norm

__all__ = ["convert", "convert_sync_batchnorm", "recalibrate", "revert_sync_batchnorm"]

Factory = Union[str, Callable[[nn.Module], nn.Module], Callable[..., nn.Module]]  # noqa: UP007
_STATE = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _num_features(module: nn.Module) -> int:
    for name in ("num_features", "num_channels"):
        if isinstance(getattr(module, name, None), int):
            return getattr(module, name)
    raise TypeError(f"convert: cannot read the channel count of {type(module).__name__} (no "
                    "num_features/num_channels); pass a factory that takes the module instead")


def _stats_holder(module: nn.Module) -> nn.Module | None:
    """The plain norm holding a module's statistics: itself, or a condnorm layer's normalizer."""
    for m in (module, getattr(module, "param_free_norm", None)):
        if isinstance(m, _NormBase):
            return m
    return None


def _first_tensor(module: nn.Module) -> Tensor | None:
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    return tensors[0] if tensors else None


def _replace(old: nn.Module, factory: Factory, fallback: Tensor | None) -> nn.Module:
    takes_channels = isinstance(factory, (str, type)) or (
        isinstance(factory, functools.partial) and isinstance(factory.func, type))
    new = make_norm(factory, _num_features(old)) if takes_channels else factory(old)
    ref = _first_tensor(old)
    ref = fallback if ref is None else ref
    if ref is not None:
        new.to(device=ref.device, dtype=ref.dtype)
    src, dst = _stats_holder(old), _stats_holder(new)
    if src is not None and dst is not None:
        with torch.no_grad():
            for name in _STATE:
                a, b = getattr(src, name, None), getattr(dst, name, None)
                if isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape:
                    b.copy_(a)
                    if isinstance(b, nn.Parameter):
                        b.requires_grad_(a.requires_grad)
    return new.train(old.training)


def convert(model: nn.Module, old: type | tuple[type, ...], factory: Factory) -> nn.Module:
    """Replace every ``old`` module in ``model`` (recursively, in place) by ``factory``'s module.

    ``factory`` is either a class, a ``functools.partial`` of a class or a
    :func:`condnorm.make_norm` name, called with the old module's channel count
    (``num_features`` or ``num_channels``), or any other callable, which receives the old
    module itself. The new module is moved to the old one's device and dtype (the model's, if
    the old one holds no tensors) and takes its train/eval mode. When both hold a plain norm
    (the module itself or a condnorm layer's ``param_free_norm``), the running statistics and
    the affine weight and bias are copied where the shapes agree. New modules are not searched
    again, so replacing ``BatchNorm2d`` with a layer that contains one terminates.

    Args:
        model: the model to edit.
        old: the module type(s) to replace.
        factory: builds each replacement (see above).

    Returns:
        ``model`` (or the replacement, if ``model`` itself is an ``old``).

    Example:
        >>> from condnorm import SPADE
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        >>> net = convert(net, nn.BatchNorm2d, functools.partial(SPADE, label_nc=5, hidden=16))
        >>> type(net[1]).__name__, net[1].param_free_norm.num_features
        ('SPADE', 8)
    """
    return _convert(model, old, factory, _first_tensor(model))


def _convert(model: nn.Module, old: type | tuple[type, ...], factory: Factory,
             fallback: Tensor | None) -> nn.Module:
    if isinstance(model, old):
        return _replace(model, factory, fallback)
    for name, child in list(model.named_children()):
        new = _convert(child, old, factory, fallback)
        if new is not child:
            setattr(model, name, new)
    return model


def _rebuild(cls: type[nn.Module], **extra: Any) -> Callable[[nn.Module], nn.Module]:
    def build(bn: nn.Module) -> nn.Module:
        return cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, **extra)
    return build


def convert_sync_batchnorm(model: nn.Module, process_group: Any = None) -> nn.Module:
    """Turn every ``BatchNorm2d`` into ``SyncBatchNorm`` (for DDP), keeping state and settings.

    Covers the normalizers inside condnorm layers (``param_free_norm``) and those from
    ``make_norm("batch")``. Undo with :func:`revert_sync_batchnorm`.

    Example:
        >>> from condnorm import SPADE
        >>> layer = convert_sync_batchnorm(SPADE(8, label_nc=3))
        >>> type(layer.param_free_norm).__name__
        'SyncBatchNorm'
    """
    return convert(model, nn.BatchNorm2d, _rebuild(nn.SyncBatchNorm, process_group=process_group))


def revert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Turn every ``SyncBatchNorm`` back into ``BatchNorm2d`` (for export, CPU or one device).

    ``SyncBatchNorm`` does not record the input rank it was made for; condnorm's layers are
    2-d, so ``BatchNorm2d`` is what comes back.

    Example:
        >>> net = revert_sync_batchnorm(nn.Sequential(nn.SyncBatchNorm(4)))
        >>> type(net[0]).__name__
        'BatchNorm2d'
    """
    return convert(model, nn.SyncBatchNorm, _rebuild(nn.BatchNorm2d))


class _Moments:
    """Exact statistics of every input one normalizer sees during a recalibration pass.

    Batch norms pool all values per channel (merged across calls with Chan et al.'s formula,
    so batches of any size combine exactly); instance norms average the per-instance
    statistics, which is what their running statistics estimate.
    """

    def __init__(self, norm: _NormBase) -> None:
        self.instance = isinstance(norm, _InstanceNorm)
        self.unbatched_dim = norm._get_no_batch_dim() if self.instance else -1
        self.prior_batches = int(norm.num_batches_tracked)
        self.calls, self.count = 0, 0
        self.mean: Tensor | float = 0.0
        self.m2: Tensor | float = 0.0  # batch norm: sum of squared deviations; instance: sum of vars

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0].detach()
        x = x.to(torch.promote_types(x.dtype, torch.float32))
        self.calls += 1
        if self.instance:
            flat = (x[None] if x.dim() == self.unbatched_dim else x).flatten(2)  # (N, C, spatial)
            self.count += flat.shape[0]
            self.mean = self.mean + flat.mean(-1).sum(0)
            self.m2 = self.m2 + flat.var(-1, correction=1).sum(0)
            return
        values = x.transpose(0, 1).flatten(1)  # (C, everything else)
        n, mean = values.shape[1], values.mean(1)
        m2 = (values - mean[:, None]).square().sum(1)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * n / total)
        self.count = total

    def statistics(self) -> tuple[Tensor, Tensor]:
        if self.instance:
            return self.mean / self.count, self.m2 / self.count
        return self.mean, self.m2 / max(self.count - 1, 1)


def _default_forward(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def recalibrate(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    reset: bool = True,
) -> None:
    r"""Re-estimate the running statistics of every normalizer from data; weights stay as they are.

    Use after changing weights outside training (an EMA/averaged generator, a converted model)
    or before evaluation. The model runs once over ``batches`` under ``no_grad`` with only its
    normalizers in training mode (each standardises with its batch's statistics, as in
    training); every other module is in eval mode, so dropout is off and spectral norm's power
    iteration does not move. Afterwards each normalizer's ``running_mean``/``running_var`` are
    the exact statistics of all the inputs it saw (unbiased variance of the concatenated
    inputs, for batch norm; the mean of the per-instance statistics, for instance norm) and
    ``num_batches_tracked`` counts its calls. Every module's train/eval mode and momentum are
    restored, also on error.

    With ``reset=False`` the old statistics are kept as ``num_batches_tracked`` earlier batches
    of a cumulative average (what ``momentum=None`` does): ``new = (k old + b pass) / (k + b)``.
    Normalizers the pass never reaches keep their statistics.

    The normalizers of :mod:`condnorm.norms` that keep running statistics (switchable, split,
    extended/L1 batch, cross-iteration, Kalman: :class:`~condnorm.norms.RunningStatsNorm2d`) are
    re-estimated as their own cumulative average (``momentum=None``) of the statistics they
    compute per batch, after :meth:`reset_running_stats` unless ``reset=False``: exact for one
    batch, the mean of the per-batch statistics for several. Under DDP each process sees only
    its shard: recalibrate on one process (after :func:`revert_sync_batchnorm`) or average the
    buffers across processes afterwards.

    Args:
        model: the model; any normalizer with running statistics is recalibrated.
        batches: an iterable of batches (a DataLoader, a list of tensors).
        forward: ``forward(model, batch)`` runs one batch (move it to the device here). The
            default calls ``model(*batch)`` for a tuple/list, ``model(**batch)`` for a dict,
            ``model(batch)`` otherwise.
        reset: forget the old statistics (default) or average with them.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        >>> data = [torch.randn(2, 3, 8, 8) for _ in range(3)]
        >>> recalibrate(net, data)
        >>> int(net[1].num_batches_tracked), net.training
        (3, True)
    """
    run = _default_forward if forward is None else forward
    norms = [m for m in model.modules() if is_batch_statistics(m)]
    moments = {m: _Moments(m) for m in norms if isinstance(m, _NormBase)}
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    hooks = [m.register_forward_pre_hook(moments[m]) for m in moments]
    try:
        for m in modes:
            m.training = m in momenta
        for m in norms:
            # torch norms leave their buffers alone (they are written below); the others average
            # their own statistics cumulatively, from scratch unless reset=False
            m.momentum = 0.0 if m in moments else None
            if reset and m not in moments:
                m.reset_running_stats()
        with torch.no_grad():
            for batch in batches:
                run(model, batch)
    finally:
        for hook in hooks:
            hook.remove()
        for m, mode in modes.items():
            m.training = mode
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, mom in moments.items():
            m.num_batches_tracked.fill_(mom.prior_batches)
    with torch.no_grad():
        for m, mom in moments.items():
            if mom.calls:
                _write_statistics(m, mom, reset)


def _write_statistics(norm: _NormBase, mom: _Moments, reset: bool) -> None:
    mean, var = mom.statistics()
    prior = 0 if reset else mom.prior_batches
    keep = prior / (prior + mom.calls)
    norm.running_mean.copy_(torch.lerp(mean, norm.running_mean.to(mean.dtype), keep))
    norm.running_var.copy_(torch.lerp(var, norm.running_var.to(var.dtype), keep))
    norm.num_batches_tracked.fill_(prior + mom.calls)
