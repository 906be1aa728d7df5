"""Turn a trained network into its inference form before export.

Export wants a network whose forward is a fixed function of its inputs: weight
reparameterisations (spectral norm, weight norm) are constants at inference, SyncBatchNorm
needs a process group that a deployed program does not have, and a GAN's averaged (EMA)
generator is the one to ship. :func:`prepare_for_export` does all of it on a copy.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm, SpectralNormLoadStateDictPreHook
from torch.nn.utils.weight_norm import WeightNorm

import condnorm
from models.oasis import OASISGenerator

__all__ = ["fold_reparameterizations", "inference_network", "prepare_for_export"]


def fold_reparameterizations(model: nn.Module) -> nn.Module:
    """Replace every weight reparameterisation by the plain weight it computes, in place.

    Covers the hook APIs :func:`torch.nn.utils.spectral_norm` (``weight_orig``, ``weight_u``,
    ``weight_v``) and :func:`torch.nn.utils.weight_norm` (``weight_g``, ``weight_v``), and every
    :mod:`torch.nn.utils.parametrize` parametrisation (``parametrizations.weight.original``,
    e.g. :func:`torch.nn.utils.parametrizations.spectral_norm`). Each weight is computed as in
    eval mode, without a power iteration, so the folded module's output equals the hooked
    module's eval output; the module then holds an ordinary ``weight`` parameter and its
    state-dict keys are those of the unwrapped layer.

    Args:
        model: the model to edit.

    Returns:
        ``model``.

    Example:
        >>> conv = nn.utils.spectral_norm(nn.Conv2d(3, 4, 3))
        >>> sorted(fold_reparameterizations(conv).state_dict())
        ['bias', 'weight']
    """
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                nn.utils.remove_spectral_norm(module, hook.name)
                _drop_spectral_load_hook(module, hook.name)
            elif isinstance(hook, WeightNorm):
                nn.utils.remove_weight_norm(module, hook.name)
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                module.parametrizations[name].eval()  # spectral norm: no power iteration on read
                with torch.no_grad():
                    parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model


def _drop_spectral_load_hook(module: nn.Module, name: str) -> None:
    """Remove the load hook that maps ``weight`` back to ``weight_orig``.

    ``remove_spectral_norm`` looks for the bare hook, but ``Module`` stores it wrapped
    (``_WrappedHook``), so it stays and would rename the folded ``weight`` on the next
    ``load_state_dict``.
    """
    hooks = module._load_state_dict_pre_hooks
    for key, hook in list(hooks.items()):
        inner = getattr(hook, "hook", hook)
        if isinstance(inner, SpectralNormLoadStateDictPreHook) and inner.fn.name == name:
            del hooks[key]


def inference_network(module: nn.Module) -> nn.Module:
    """The network a training module would run at inference.

    A LightningModule of this project holds its networks as attributes: the EMA generator
    (``generator_ema``) is chosen when it exists, then the generator (``generator``), then a
    single network (``net``); any other module (an OASIS generator, whose ``net`` is its
    backbone, included) is returned as it is.

    Example:
        >>> holder = nn.Module()
        >>> holder.generator, holder.generator_ema = nn.Linear(2, 2), nn.Linear(2, 3)
        >>> inference_network(holder).out_features
        3
    """
    if isinstance(module, OASISGenerator):  # a generator itself, whose ``net`` is only its backbone
        return module
    for name in ("generator_ema", "generator", "net"):
        network = getattr(module, name, None)
        if isinstance(network, nn.Module):
            return network
    return module


def _plain_batchnorm(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)


def prepare_for_export(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return ``model`` in the form to export: eval mode, plain weights, plain BatchNorm.

    Steps: pick the inference network (:func:`inference_network`: the EMA generator when
    present), copy it (unless ``inplace``), turn ``nn.SyncBatchNorm`` and
    :class:`condnorm.SyncBatchNorm2d` into ``BatchNorm2d`` (statistics kept; see
    :func:`condnorm.revert_sync_batchnorm`), switch to eval mode, fold spectral/weight norm into
    plain weights (:func:`fold_reparameterizations`) and freeze the parameters. The result
    computes exactly what the original computes in eval mode.

    Args:
        model: a network or a training module holding one.
        inplace: edit ``model`` itself instead of a copy.

    Returns:
        The prepared network.

    Example:
        >>> net = nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(3, 4, 3)), nn.SyncBatchNorm(4))
        >>> ready = prepare_for_export(net)
        >>> type(ready[1]).__name__, ready.training, sorted(ready[0].state_dict())
        ('BatchNorm2d', False, ['bias', 'weight'])
    """
    network = inference_network(model)
    if not inplace:
        network = copy.deepcopy(network)
    network = condnorm.revert_sync_batchnorm(network)
    network = condnorm.convert(network, condnorm.SyncBatchNorm2d, _plain_batchnorm).eval()
    fold_reparameterizations(network)
    return network.requires_grad_(False)
