"""The mask-to-image generators by name: one registry for training, checkpoints and inference.

========  =====================================================  ==========================
name      network                                                extra hyperparameters
========  =====================================================  ==========================
spade     :class:`models.spade.SPADEGenerator`                   ``z_dim``, ``use_vae``
clade     :func:`models.spade.clade.clade_generator`             ``z_dim``, ``use_vae``
rain      :class:`models.sean.SEANGenerator` (alias ``sean``)    ``style_dim``
========  =====================================================  ==========================

Every generator takes ``(semantic_nc, *, ngf, crop_size, aspect_ratio, num_upsampling_layers,
norm)`` plus its extras. ``rain`` is called with the style (``style_image=`` or
``style_codes=``); the others with the segmap only (and ``z`` for the VAE).

Trained with ``discriminator: oasis`` (:mod:`models.oasis`), ``spade`` and ``clade`` are built for
``semantic_nc + z_dim`` channels and wrapped in :class:`models.oasis.OASISGenerator`, which feeds them
the dense label map plus fresh 3-D noise (``noise_mode``) on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from models.oasis import OASISGenerator
from models.sean import SEANGenerator
from models.spade.clade import clade_generator
from models.spade.generator import SPADEGenerator

__all__ = ["GENERATORS", "GeneratorKind", "build_generator", "generator_from_hparams", "generator_kind"]


@dataclass(frozen=True)
class GeneratorKind:
    """How to build one kind of generator."""

    build: Callable[..., SPADEGenerator]
    hparams: tuple[str, ...]  # the arguments it takes besides the shared ones
    takes_style: bool = False  # called with style_image= / style_codes=


GENERATORS: dict[str, GeneratorKind] = {
    "spade": GeneratorKind(SPADEGenerator, ("z_dim", "use_vae")),
    "clade": GeneratorKind(clade_generator, ("z_dim", "use_vae")),
    "rain": GeneratorKind(SEANGenerator, ("style_dim",), takes_style=True),
}
_ALIASES = {"sean": "rain"}


def generator_kind(name: str) -> tuple[str, GeneratorKind]:
    """The canonical name and entry for ``name`` (case-insensitive; ``sean`` is ``rain``).

    Raises:
        ValueError: for an unknown name; the message lists the choices.

    Example:
        >>> generator_kind("SEAN")[0]
        'rain'
    """
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose one of {sorted(GENERATORS)} "
                         f"(aliases: {_ALIASES})")
    return key, GENERATORS[key]


def build_generator(name: str, semantic_nc: int, **kwargs: Any) -> SPADEGenerator:
    """Build the generator called ``name`` for ``semantic_nc`` input channels.

    Example:
        >>> import torch
        >>> g = build_generator("clade", 5, ngf=4, crop_size=32, norm="batch")
        >>> g(torch.rand(2, 5, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """
    return generator_kind(name)[1].build(semantic_nc, **kwargs)


def generator_from_hparams(h: Mapping[str, Any], semantic_nc: int) -> SPADEGenerator | OASISGenerator:
    """Build the generator that ``MaskToImageModule`` trains from its hyperparameters.

    ``h["generator"]`` picks the kind (``spade`` when absent, as in older checkpoints); each
    kind also reads the hyperparameters it lists in :data:`GENERATORS`. ``semantic_nc`` comes
    from the label contract (:attr:`models.data.label_layout.LabelLayout.semantic_nc`).
    With ``h["discriminator"] == "oasis"`` the generator takes ``semantic_nc + z_dim`` channels and
    is wrapped in :class:`models.oasis.OASISGenerator` (noise of ``h["noise_mode"]``, default pixel).

    Raises:
        ValueError: for ``oasis`` with a generator that takes region styles (``rain``) or with ``use_vae``.

    Example:
        >>> h = {"generator": "clade", "ngf": 4, "crop_size": 32, "aspect_ratio": 1.0,
        ...      "num_upsampling_layers": "normal", "norm_G": "batch", "z_dim": 8, "use_vae": False}
        >>> type(generator_from_hparams(h, 5)).__name__
        'SPADEGenerator'
    """
    name, kind = generator_kind(h.get("generator", "spade"))
    oasis = h.get("discriminator", "multiscale") == "oasis"
    if oasis and (kind.takes_style or h.get("use_vae")):
        raise ValueError(f"discriminator 'oasis' trains spade or clade generators fed label map + 3-D noise; "
                         f"not generator {name!r}" + (" with use_vae" if h.get("use_vae") else "") +
                         " (choose generator: spade | clade, use_vae: false)")
    net: nn.Module = build_generator(
        name, semantic_nc + (h["z_dim"] if oasis else 0), ngf=h["ngf"], crop_size=h["crop_size"],
        aspect_ratio=h["aspect_ratio"], num_upsampling_layers=h["num_upsampling_layers"], norm=h["norm_G"],
        **{k: h[k] for k in kind.hparams})
    return OASISGenerator(net, z_dim=h["z_dim"], noise_mode=h.get("noise_mode", "pixel")) if oasis else net
