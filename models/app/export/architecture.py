"""Weights as safetensors plus a JSON description of the architecture: rebuild a model without pickle.

:func:`save_exported_safetensors` writes the prepared weights (spectral norm folded, plain
BatchNorm) to ``model.safetensors`` with the description in the file's header (key
``"condnorm"``) and, for people and other tools, in ``model.json`` beside it.
:func:`load_exported_safetensors` reads the header, builds the network from the description
(only the builders in :data:`BUILDERS`; nothing is imported by name), prepares it the same way
and loads the weights strictly.

The description is the training-time architecture, e.g. ::

    {"builder": "spade", "args": {"semantic_nc": 151, "ngf": 64, "crop_size": 256, ...}}

(an OASIS-trained generator nests its backbone's: ``{"builder": "oasis", "args": {"net": {...},
"z_dim": 64, "noise_mode": "pixel"}}``).

:func:`describe` reads it off a network and checks it: the network rebuilt from it (on the
meta device) must have the same modules (``repr``) and state-dict shapes, so a custom ``norm_layer`` or a
width the description cannot express is refused instead of silently mis-built.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

import condnorm
from models.adain.modulation import AdaCoNModulation, AdaINModulation
from models.adain.style_transfer import StyleTransfer
from models.oasis import OASISGenerator
from models.sean import SEANGenerator
from models.spade import NUM_UPSAMPLINGS, ConvEncoder, SPADEGenerator
from models.spade.clade import clade_generator

from .formats import METADATA_KEY
from .prepare import inference_network, prepare_for_export

__all__ = ["BUILDERS", "build", "describe", "load_exported_safetensors", "read_description",
           "save_exported_safetensors"]

FORMAT = "condnorm-safetensors/1"

BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "spade": SPADEGenerator,
    "clade": clade_generator,
    "rain": SEANGenerator,
    "spade-encoder": lambda **kw: ConvEncoder(**kw),
    "style-transfer": lambda **kw: StyleTransfer(**kw),
    "oasis": lambda net, z_dim, noise_mode, device=None: OASISGenerator(build(net, device=device), z_dim=z_dim,
                                                                         noise_mode=noise_mode),
}
"""Builder name → callable taking the description's ``args`` (and ``device``)."""


def _norm_name(module: nn.Module) -> str:
    if isinstance(module, (nn.SyncBatchNorm, condnorm.SyncBatchNorm2d)):
        return "syncbatch"
    if isinstance(module, nn.BatchNorm2d):
        return "batch"
    if isinstance(module, nn.InstanceNorm2d):
        return "instance"
    if isinstance(module, nn.GroupNorm):
        return "layer" if module.num_groups == 1 else "group"
    if isinstance(module, nn.Identity):
        return "none"
    raise ValueError(f"describe: no condnorm.make_norm name for {type(module).__name__}")


def _spectral(module: nn.Module) -> bool:
    return hasattr(module, "weight_orig") or hasattr(module, "parametrizations")


def _describe_generator(g: SPADEGenerator) -> tuple[str, dict[str, Any]]:
    sh, sw = g.latent_size
    ups = {v: k for k, v in NUM_UPSAMPLINGS.items()}[g.num_upsamplings]
    norm = g.head_0.norm_0
    args = {"semantic_nc": g.semantic_nc, "ngf": g.latent_channels // 16, "z_dim": g.z_dim,
            "crop_size": g.output_size[1], "aspect_ratio": sw / sh, "num_upsampling_layers": ups,
            "use_vae": g.use_vae, "norm": _norm_name(norm.param_free_norm),
            "spectral": _spectral(g.head_0.conv_0)}
    if isinstance(norm, condnorm.CLADE):
        return "clade", {**args, "plain_gamma": norm.plain_gamma}
    if isinstance(norm, condnorm.SPADE):
        return "spade", {**args, "kernel_size": norm.mlp_gamma.kernel_size[0]}
    raise ValueError(f"describe: SPADEGenerator with {type(norm).__name__} norms has no builder")


def _describe_rain(g: SEANGenerator) -> tuple[str, dict[str, Any]]:
    sh, sw = g.latent_size
    norm = g.head_0.norms()[0]  # a RAIN layer
    first_conv = next(m for m in g.Zencoder.modules() if isinstance(m, nn.Conv2d))
    return "rain", {"label_nc": g.label_nc, "ngf": g.latent_channels // 16, "style_dim": g.style_dim,
                    "crop_size": g.output_size[1], "aspect_ratio": sw / sh,
                    "num_upsampling_layers": {v: k for k, v in NUM_UPSAMPLINGS.items()}[g.num_upsamplings],
                    "norm": _norm_name(norm.param_free_norm), "spectral": _spectral(g.head_0.conv_0),
                    "kernel_size": norm.conv_gamma.kernel_size[0],
                    "hidden": norm.Spade.mlp_shared[0].out_channels, "noise": norm.noise_var is not None,
                    "encoder_ngf": first_conv.out_channels}


def _describe_oasis(g: OASISGenerator) -> tuple[str, dict[str, Any]]:
    name, args = _describe_generator(g.net)
    return "oasis", {"net": {"builder": name, "args": args}, "z_dim": g.z_dim, "noise_mode": g.noise_mode}


def _describe_encoder(e: ConvEncoder) -> tuple[str, dict[str, Any]]:
    first = getattr(e, e._layer_names[0])
    return "spade-encoder", {"ngf": first[0].out_channels, "z_dim": e.z_dim, "input_size": e.input_size,
                             "spectral": _spectral(first[0]), "norm": _norm_name(first[1])}


def _describe_style_transfer(net: StyleTransfer) -> tuple[str, dict[str, Any]]:
    m = net.modulation
    if isinstance(m, AdaINModulation):
        return "style-transfer", {"modulation": "adain", "eps": m.eps, "unbiased": m.unbiased}
    if isinstance(m, AdaCoNModulation):
        a = m.adacon
        return "style-transfer", {"modulation": "adacon", "style_dim": a.style_dim,
                                  "style_hidden": m.style_encoder[0].out_channels,
                                  "adacon_kernel_size": a.kernel_size, "adacon_groups": a.groups,
                                  "adacon_local_window": a.local_window}
    raise ValueError(f"describe: no builder for a StyleTransfer with {type(m).__name__}")


_DESCRIBERS: list[tuple[type, Callable[[Any], tuple[str, dict[str, Any]]]]] = [
    (OASISGenerator, _describe_oasis),
    (SEANGenerator, _describe_rain),  # before its base class
    (SPADEGenerator, _describe_generator),
    (ConvEncoder, _describe_encoder),
    (StyleTransfer, _describe_style_transfer),
]


def _signature(model: nn.Module) -> tuple[str, dict[str, tuple[int, ...]]]:
    return repr(model), {k: tuple(v.shape) for k, v in model.state_dict().items()}


def build(description: Mapping[str, Any], *, device: torch.device | str | None = None) -> nn.Module:
    """Build the (untrained) network a description names, in its training-time form.

    Raises:
        ValueError: for an unknown builder (the message lists them).

    Example:
        >>> g = build({"builder": "spade", "args": {"semantic_nc": 4, "ngf": 2, "crop_size": 32}})
        >>> g.output_size
        (32, 32)
    """
    name = description.get("builder")
    if name not in BUILDERS:
        raise ValueError(f"unknown architecture builder {name!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[name](**description.get("args", {}), device=device)


def describe(model: nn.Module) -> dict[str, Any]:
    """The description of ``model`` (a network of :data:`BUILDERS`, or a training module holding one).

    Raises:
        ValueError: if the network is of no known kind, or if the network rebuilt from the
            description differs from it (a custom norm layer, a non-default hidden width, …).

    Example:
        >>> describe(ConvEncoder(ngf=2, z_dim=4, input_size=16))["args"]["z_dim"]
        4
    """
    network = inference_network(model)
    for cls, describer in _DESCRIBERS:
        if isinstance(network, cls):
            name, args = describer(network)
            break
    else:
        raise ValueError(f"describe: no architecture builder for {type(network).__name__}; "
                         f"known: {sorted(BUILDERS)}")
    description = {"builder": name, "args": args}
    if _signature(build(description, device="meta")) != _signature(network):
        raise ValueError(f"describe: {type(network).__name__} cannot be rebuilt from {description} (a custom "
                         "norm layer or width?); save its state dict and rebuild it in code instead")
    return description


def save_exported_safetensors(model: nn.Module, path: str | Path, *,
                              metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the prepared weights of ``model`` and its description; returns the ``.safetensors`` path.

    Args:
        model: a network of :data:`BUILDERS` or a training module (the EMA generator is chosen).
        path: the ``.safetensors`` file; the description also goes to the same path with ``.json``.
        metadata: extra JSON-able entries (the label layout, …) stored with the description.
    """
    from safetensors.torch import save_file

    description = {"format": FORMAT, **describe(model), **dict(metadata or {})}
    network = prepare_for_export(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(description, sort_keys=True)
    save_file({k: v.detach().contiguous() for k, v in network.state_dict().items()}, str(path),
              metadata={METADATA_KEY: text})
    path.with_suffix(".json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    return path


def read_description(path: str | Path) -> dict[str, Any]:
    """The description stored in a ``.safetensors`` header by :func:`save_exported_safetensors`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    if METADATA_KEY not in header:
        raise ValueError(f"{path}: no '{METADATA_KEY}' architecture description in the safetensors header; "
                         "was it written by infer.py export --format safetensors?")
    return json.loads(header[METADATA_KEY])


def load_exported_safetensors(path: str | Path) -> nn.Module:
    """Rebuild the network saved by :func:`save_exported_safetensors`, in eval mode, without pickle.

    Example:
        >>> import tempfile
        >>> enc = ConvEncoder(ngf=2, z_dim=4, input_size=16)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     again = load_exported_safetensors(save_exported_safetensors(enc, f"{d}/enc.safetensors"))
        >>> type(again).__name__, again.training
        ('ConvEncoder', False)
    """
    from safetensors.torch import load_file

    network = prepare_for_export(build(read_description(path)), inplace=True)
    network.load_state_dict(load_file(str(path)), strict=True)
    return network
