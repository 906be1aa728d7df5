"""Build SPADE generators from hyperparameters and load them from checkpoints.

Two checkpoint kinds are accepted, both read with ``torch.load(weights_only=True)`` so a
malicious pickle cannot run code:

- a Lightning checkpoint written by ``train.py`` (``hyper_parameters`` + ``state_dict``;
  the EMA generator is preferred when present);
- an official NVlabs/SPADE or ZPdesu/SEAN ``*_net_G.pth`` (a bare state dict): the label
  layout and image size cannot be read from it and come from the caller.

The kind of generator (``spade``, ``clade``, ``rain``) comes from the Lightning checkpoint's
``generator`` hyperparameter (``spade`` when absent) through :mod:`models.generators`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.data.semantic_input import semantic_nc as count_semantic_nc
from models.generators import build_generator, generator_kind
from models.weights import read_weights

from .encoder import ConvEncoder
from .generator import NUM_UPSAMPLINGS, SPADEGenerator

__all__ = ["LabelLayout", "generator_from_hparams", "load_encoder", "load_generator"]


@dataclass(frozen=True)
class LabelLayout:
    """How label maps become the generator's input channels."""

    label_nc: int
    contain_dontcare_label: bool
    use_instance: bool

    @property
    def semantic_nc(self) -> int:
        """Channels of the one-hot map plus dontcare and instance-edge channels."""
        return count_semantic_nc(self.label_nc, self.contain_dontcare_label, self.use_instance)


def generator_from_hparams(h: Mapping[str, Any]) -> SPADEGenerator:
    """Build the generator that ``MaskToImageModule`` trains from its hyperparameters.

    ``h["generator"]`` picks the kind (``spade`` when absent, as in older checkpoints); each
    kind also reads the hyperparameters it lists in :data:`models.generators.GENERATORS`.
    """
    layout = LabelLayout(h["label_nc"], h["contain_dontcare_label"], h["use_instance"])
    name, kind = generator_kind(h.get("generator", "spade"))
    return build_generator(name, layout.semantic_nc, ngf=h["ngf"], crop_size=h["crop_size"],
                           aspect_ratio=h["aspect_ratio"], num_upsampling_layers=h["num_upsampling_layers"],
                           norm=h["norm_G"], **{k: h[k] for k in kind.hparams})


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
) -> tuple[SPADEGenerator, LabelLayout]:
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
    ckpt = read_weights(path)
    if "state_dict" in ckpt and "hyper_parameters" in ckpt:
        h = ckpt["hyper_parameters"]
        layout = LabelLayout(h["label_nc"], h["contain_dontcare_label"], h["use_instance"])
        generator = generator_from_hparams(h)
        prefix = "generator_ema." if any(k.startswith("generator_ema.") for k in ckpt["state_dict"]) \
            else "generator."
        state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    else:
        if layout is None:
            raise ValueError(f"{path}: an official generator file does not record the label layout; "
                             "pass label_nc, contain_dontcare_label and use_instance")
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
    ckpt = read_weights(path)
    if "state_dict" in ckpt and "hyper_parameters" in ckpt:
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
