"""Load trained networks from files: Lightning checkpoints, official weights, safetensors.

Every file is read with :func:`models.weights.read_checkpoint`: ``torch.load(weights_only=True)``
(a malicious pickle cannot run code), hyperparameters that name classes outside this project
refused before anything is imported, and NaN/Inf weights refused (they only make black images).

- a Lightning checkpoint written by ``train.py`` (``hyper_parameters`` + ``state_dict``; the
  EMA generator is preferred when present) records its label contract
  (:class:`~models.data.label_layout.LabelLayout`) and its generator kind (an OASIS-trained one,
  ``discriminator: oasis``, is rebuilt as a :class:`~models.oasis.OASISGenerator` that draws its 3-D noise;
  an SDM diffusion checkpoint (``DiffusionModule``) as a :class:`~models.sdm.DDIMSampler` around its EMA
  denoiser);
- an official NVlabs/SPADE or ZPdesu/SEAN ``*_net_G.pth`` (a bare state dict) records neither:
  the label layout and image size come from the caller;
- a published pytorch-AdaIN ``vgg_normalised.pth`` + ``decoder.pth`` pair, or a
  ``StyleTransferModule`` checkpoint, for style transfer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.adain import StyleTransfer
from models.data.label_layout import LabelLayout
from models.generators import build_generator, generator_from_hparams, generator_kind
from models.lit.diffusion import DiffusionModule
from models.lit.style_transfer import StyleTransferModule
from models.oasis import OASISGenerator
from models.sdm import DDIMSampler
from models.spade import NUM_UPSAMPLINGS, ConvEncoder, SPADEGenerator
from models.weights import read_checkpoint

__all__ = ["load_encoder", "load_generator", "load_style_transfer"]


def _is_lightning(ckpt: Any) -> bool:
    return isinstance(ckpt, dict) and "state_dict" in ckpt and "hyper_parameters" in ckpt


def _load_strict(model: torch.nn.Module, state: Mapping[str, Any], path: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in sorted(set(own) & set(state)) if tuple(state[k].shape) != tuple(own[k].shape)]
    if (missing or unexpected) and not wrong:
        # Let the modules convert foreign keys first (SEAN's fc_mu{j}, its unused norm buffers);
        # on a mismatch the half-loaded model is discarded with the error below.
        try:
            result = model.load_state_dict(state, strict=False)
            missing, unexpected = sorted(result.missing_keys), sorted(result.unexpected_keys)
        except RuntimeError as err:
            wrong = [line.strip() for line in str(err).splitlines() if "size mismatch" in line]
    if missing or unexpected or wrong:
        lines = ([f"missing keys: {missing[:8]}"] if missing else []) + \
                ([f"unexpected keys: {unexpected[:8]}"] if unexpected else []) + wrong[:8]
        raise ValueError(f"{path}: does not match the {type(model).__name__} architecture:\n  " +
                         "\n  ".join(lines) +
                         "\nCheck label_nc / dontcare / instance settings, ngf and num_upsampling_layers.")
    model.load_state_dict(state, strict=True)


def load_generator(
    path: str | Path,
    *,
    layout: LabelLayout | None = None,
    crop_size: int = 256,
    aspect_ratio: float = 1.0,
    num_upsampling_layers: str | None = None,
    norm: str = "syncbatch",
    kind: str = "spade",
) -> tuple[SPADEGenerator | OASISGenerator | DDIMSampler, LabelLayout]:
    """Load a generator from a Lightning checkpoint or an official ``*_net_G.pth``.

    Args:
        path: checkpoint file.
        layout: label layout for an official file (ignored for Lightning checkpoints, which
            record it); required there because the file does not store it.
        crop_size: output width for an official file.
        aspect_ratio: width / height for an official file.
        num_upsampling_layers: for an official file; ``None`` guesses ``most`` from the keys
            and ``normal`` otherwise (``more`` cannot be told from the keys).
        norm: parameter-free norm for an official file.
        kind: what an official file holds: ``"spade"`` (NVlabs/SPADE) or ``"rain"`` (ZPdesu/SEAN);
            Lightning checkpoints record their kind.

    Returns:
        The generator in eval mode and its label layout.

    Raises:
        ValueError: on an unreadable file or an architecture mismatch (the message lists the
            mismatching keys and shapes).
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    if _is_lightning(ckpt):
        h = ckpt["hyper_parameters"]
        if "label_nc" not in h:
            raise ValueError(f"{path}: a Lightning checkpoint, but not of a mask-to-image model (no label_nc); "
                             "for style transfer use infer.py adain")
        layout = LabelLayout.from_dict(h)
        if any(k.startswith("denoiser.") for k in ckpt["state_dict"]):  # SDM: sample with the EMA denoiser
            denoiser = DiffusionModule.build_denoiser(h)
            state = {k[len("denoiser_ema."):]: v for k, v in ckpt["state_dict"].items()
                     if k.startswith("denoiser_ema.")}
            _load_strict(denoiser, state, path)
            return DiffusionModule.build_sampler(h, denoiser.eval()).eval(), layout
        generator = generator_from_hparams(h, layout.semantic_nc)
        prefix = "generator_ema." if any(k.startswith("generator_ema.") for k in ckpt["state_dict"]) \
            else "generator."
        state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    else:
        if layout is None:
            raise ValueError(f"{path}: an official generator file does not record the label layout; "
                             "pass --label-nc (and --contain-dontcare-label, --no-instance, --dataset-mode)")
        state = ckpt
        ups = num_upsampling_layers or ("most" if any(k.startswith("up_4.") for k in state) else "normal")
        if ups not in NUM_UPSAMPLINGS:
            raise ValueError(f"num_upsampling_layers must be one of {list(NUM_UPSAMPLINGS)}, got {ups!r}")
        # conv_img maps the last block's width (ngf, or ngf/2 with "most") to RGB.
        ngf = state["conv_img.weight"].shape[1] * (2 if ups == "most" else 1)
        shared = dict(ngf=ngf, crop_size=crop_size, aspect_ratio=aspect_ratio, num_upsampling_layers=ups,
                      norm=norm)
        name = generator_kind(kind)[0]
        if name == "rain":
            style_dim = state["Zencoder.model.14.weight"].shape[0]  # the encoder's last conv
            generator = build_generator(name, layout.semantic_nc, style_dim=style_dim, **shared)
        elif name == "spade":
            use_vae = state["fc.weight"].dim() == 2  # Linear from z instead of a conv on the segmap
            generator = build_generator(name, layout.semantic_nc, use_vae=use_vae, **shared)
        else:
            raise ValueError(f"{path}: official {name} files are not supported (their parameter names "
                             "differ); load a Lightning checkpoint of this project")
    _load_strict(generator, state, path)
    return generator.eval(), layout


def load_encoder(path: str | Path) -> ConvEncoder:
    """Load the VAE style encoder from a Lightning checkpoint or an official ``*_net_E.pth``.

    Raises:
        ValueError: if the file holds no encoder (a model trained without ``use_vae``) or its
            weights do not fit.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    if _is_lightning(ckpt):
        state = {k[len("encoder."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
        if not state:
            raise ValueError(f"{path}: this model was trained without use_vae, so it has no style encoder; "
                             "--style needs a VAE model")
        h = ckpt["hyper_parameters"]
        encoder = ConvEncoder(ngf=h["ngf"], z_dim=h["z_dim"])
    else:
        state = ckpt
        encoder = ConvEncoder(ngf=state["layer1.0.weight_orig"].shape[0],
                              z_dim=state["fc_mu.weight"].shape[0])
    _load_strict(encoder, state, path)
    return encoder.eval()


def load_style_transfer(*, checkpoint: str | Path | None = None, vgg: str | Path | None = None,
                        decoder: str | Path | None = None) -> StyleTransfer:
    """The style-transfer network of a ``StyleTransferModule`` checkpoint or the published AdaIN pair.

    Args:
        checkpoint: a Lightning checkpoint written by ``train.py`` (AdaIN or AdaCoN).
        vgg: pytorch-AdaIN's ``vgg_normalised.pth`` (with ``decoder``).
        decoder: pytorch-AdaIN's ``decoder.pth`` (with ``vgg``).

    Returns:
        The network in eval mode, on the CPU.

    Raises:
        ValueError: for a wrong combination of arguments, a checkpoint of another task, or
            weights that do not fit.
    """
    if checkpoint is not None:
        if vgg is not None or decoder is not None:
            raise ValueError("give either a checkpoint or vgg + decoder, not both")
        ckpt = read_checkpoint(checkpoint)
        if not _is_lightning(ckpt) or "modulation" not in ckpt["hyper_parameters"]:
            raise ValueError(f"{checkpoint}: not a style-transfer checkpoint of this project (train.py with "
                             "configs/adain.yaml or adacon.yaml)")
        h = {k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("_")}
        module = StyleTransferModule(**{**h, "encoder_weights": None, "decoder_weights": None})
        _load_strict(module, ckpt["state_dict"], Path(checkpoint))
        return module.net.eval()
    if vgg is None or decoder is None:
        raise ValueError("give --vgg and --decoder (the published AdaIN weights) or --checkpoint (a model "
                         "trained with train.py)")
    return StyleTransfer.from_official(vgg=vgg, decoder=decoder).eval()
