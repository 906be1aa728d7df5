"""The AdaIN networks: the normalised-VGG encoder (to relu4_1) and its mirrored decoder.

Both keep the module indices of pytorch-AdaIN's ``net.py``, so the published
``vgg_normalised.pth`` and ``decoder.pth`` load unchanged (``load_state_dict`` with
``strict=True``). Torchvision's VGG-19 maps onto the same layout one conv for one conv; the
1×1 pre-processing conv then holds ImageNet's ``(x − mean) / std`` instead of the Caffe
RGB→BGR×255 − mean map. The activation scales of the two VGGs differ, so a decoder trained on
one does not fit the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor, nn

from models.weights import read_weights

__all__ = [
    "ENCODER_DEPTH",
    "TORCHVISION_TO_OFFICIAL",
    "AdaINDecoder",
    "NormalisedVGG",
    "encoder_state_dict",
    "load_weights_file",
    "torchvision_init_",
]

# One entry per VGG-19 block element: a conv width, or "M" for a 2×2 max-pool.
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
# The mirrored decoder from 512 channels: a conv width, or "U" for a 2× nearest upsampling.
_DECODER = (256, "U", 256, 256, 256, 128, "U", 128, 64, "U", 64, 3)

ENCODER_DEPTH = 31
"""Modules of the official 53-module ``vgg`` kept by the encoder (``[:31]``, up to relu4_1)."""
_TAPS = (3, 10, 17, 30)  # indices of relu1_1, relu2_1, relu3_1, relu4_1
_OFFICIAL_CONVS = (2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51)
TORCHVISION_TO_OFFICIAL = dict(zip((0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
                                   _OFFICIAL_CONVS))
"""``torchvision.models.vgg19().features`` conv index → official ``vgg_normalised`` index."""

WeightsSource = Union[str, Path, Mapping[str, Tensor]]  # noqa: UP007 (runtime alias)


def _conv(c_in: int, c_out: int, dd: dict[str, Any]) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3, **dd)]


class NormalisedVGG(nn.Sequential):
    """VGG-19 up to relu4_1 in the layout of AdaIN's ``vgg_normalised`` (reflection padding, ceil pools).

    Module 0 is a 1×1 conv that maps RGB in [0, 1] to the input the VGG weights expect; each
    3×3 conv is preceded by ``ReflectionPad2d(1)``; the max-pools use ``ceil_mode=True``.
    Loading the official 53-module file drops the keys of the convs beyond relu4_1 (indices
    31–52) and is strict about everything else.

    Args:
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - Input: ``(N, 3, H, W)``.
        - Output: relu1_1 ``(N, 64, H, W)``, relu2_1 ``(N, 128, ⌈H/2⌉, ⌈W/2⌉)``, relu3_1
          ``(N, 256, ⌈H/4⌉, …)``, relu4_1 ``(N, 512, ⌈H/8⌉, …)``.

    Example:
        >>> feats = NormalisedVGG()(torch.rand(1, 3, 32, 40))
        >>> [tuple(f.shape) for f in feats]
        [(1, 64, 32, 40), (1, 128, 16, 20), (1, 256, 8, 10), (1, 512, 4, 5)]
    """

    def __init__(self, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        dd = {"device": device, "dtype": dtype}
        layers: list[nn.Module] = [nn.Conv2d(3, 3, 1, **dd)]
        c_in = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
            else:
                layers += [*_conv(c_in, v, dd), nn.ReLU()]
                c_in = v
        super().__init__(*layers[:ENCODER_DEPTH])
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        """Return the features at relu1_1, relu2_1, relu3_1 and relu4_1."""
        feats = []
        for i, layer in enumerate(self):
            x = layer(x)
            if i in _TAPS:
                feats.append(x)
        return feats

    def encode(self, x: Tensor) -> Tensor:
        """Return relu4_1 only."""
        for layer in self:
            x = layer(x)
        return x

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for i in _OFFICIAL_CONVS:
            if i >= ENCODER_DEPTH:
                state_dict.pop(f"{prefix}{i}.weight", None)
                state_dict.pop(f"{prefix}{i}.bias", None)
        super()._load_from_state_dict(state_dict, prefix, *args)


class AdaINDecoder(nn.Sequential):
    """The decoder of pytorch-AdaIN: relu4_1 features back to an image (29 modules, official indices).

    Mirrors the encoder with reflection-padded 3×3 convs and nearest 2× upsampling; the last
    conv has no activation (the image is clamped when saved).

    Shape:
        - Input: ``(N, 512, h, w)``.
        - Output: ``(N, 3, 8h, 8w)``.

    Example:
        >>> AdaINDecoder()(torch.randn(1, 512, 4, 5)).shape
        torch.Size([1, 3, 32, 40])
    """

    def __init__(self, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        dd = {"device": device, "dtype": dtype}
        layers: list[nn.Module] = []
        c_in = 512
        for v in _DECODER:
            if v == "U":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            else:
                layers += [*_conv(c_in, v, dd), nn.ReLU()]
                c_in = v
        super().__init__(*layers[:-1])


def load_weights_file(path: str | Path) -> dict[str, Tensor]:
    """Read a plain state dict on the CPU with :func:`models.weights.read_weights` (weights only).

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if the file is refused, unreadable or not a state dict of tensors (the message
            names the file).
    """
    path = Path(path)
    state = read_weights(path)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a plain state dict (name → tensor), got {type(state).__name__}")
    return dict(state)


def _torchvision_state_dict(weights: Any) -> dict[str, Tensor]:
    """Resolve a torchvision ``VGG19_Weights`` member or name to its state dict (download or cache)."""
    from torchvision.models import VGG19_Weights

    try:
        member = VGG19_Weights.verify(weights)
    except (KeyError, TypeError) as err:
        names = ", ".join(VGG19_Weights.__members__)
        raise ValueError(f"encoder weights {weights!r}: not an existing file and not a VGG19_Weights name "
                         f"({names})") from err
    try:
        return member.get_state_dict(progress=False, check_hash=True)
    except Exception as err:
        raise RuntimeError(
            f"could not obtain torchvision's {member} ({member.url}): {err}. Download the file on a "
            "machine with internet access into the torch hub cache (~/.cache/torch/hub/checkpoints/) "
            "or pass its local path as the weights") from err


def _imagenet_input_conv(dtype: torch.dtype) -> dict[str, Tensor]:
    """The 1×1 conv computing ImageNet's ``(x − mean) / std`` on RGB in [0, 1]."""
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=dtype)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=dtype)
    return {"0.weight": torch.diag(1.0 / std)[:, :, None, None], "0.bias": -mean / std}


def _from_torchvision(state: Mapping[str, Tensor], dtype: torch.dtype) -> dict[str, Tensor]:
    out = _imagenet_input_conv(dtype)
    for tv, official in TORCHVISION_TO_OFFICIAL.items():
        for kind in ("weight", "bias"):
            key = f"features.{tv}.{kind}"
            if key in state:
                out[f"{official}.{kind}"] = state[key]
    return out


def torchvision_init_(encoder: NormalisedVGG) -> NormalisedVGG:
    """Initialise ``encoder`` as torchvision initialises VGG (Kaiming fan-out, zero bias), in place.

    The 1×1 input conv gets ImageNet's normalisation, as for torchvision weights.

    Example:
        >>> enc = torchvision_init_(NormalisedVGG())
        >>> [round(b, 3) for b in enc[0].bias.tolist()]
        [-2.118, -2.036, -1.804]
    """
    state = _imagenet_input_conv(encoder[0].weight.dtype)
    with torch.no_grad():
        encoder[0].weight.copy_(state["0.weight"])
        encoder[0].bias.copy_(state["0.bias"])
        for conv in list(encoder)[1:]:
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(conv.bias)
    return encoder


def encoder_state_dict(weights: WeightsSource | Any) -> dict[str, Tensor]:
    """Turn encoder weights of either supported kind into a :class:`NormalisedVGG` state dict.

    Accepts the official ``vgg_normalised`` layout (keys ``0.weight`` … ``51.bias``) or a
    torchvision VGG-19 state dict (``features.0.weight`` …, classifier keys ignored), given as a
    mapping, a file path, or a torchvision ``VGG19_Weights`` member/name (``"DEFAULT"``). Torchvision
    weights get the 1×1 input conv set to ImageNet's ``(x − mean) / std`` on RGB in [0, 1].

    Raises:
        ValueError: if the keys match neither layout.
        RuntimeError: if torchvision weights cannot be downloaded or found in the cache.

    Example:
        >>> from torchvision.models import vgg19
        >>> sd = encoder_state_dict(vgg19().state_dict())
        >>> sd["0.weight"].shape, sd["29.weight"].shape
        (torch.Size([3, 3, 1, 1]), torch.Size([512, 256, 3, 3]))
    """
    if isinstance(weights, Mapping):
        state = dict(weights)
    elif isinstance(weights, Path) or (isinstance(weights, str) and Path(weights).is_file()):
        state = load_weights_file(weights)
    else:
        state = _torchvision_state_dict(weights)
    if "features.0.weight" in state:
        return _from_torchvision(state, state["features.0.weight"].dtype)
    if "0.weight" in state and tuple(state["0.weight"].shape) == (3, 3, 1, 1):
        return state
    keys = ", ".join(list(state)[:4])
    raise ValueError(f"encoder weights: expected the vgg_normalised layout ('0.weight' of shape "
                     f"(3, 3, 1, 1), '2.weight', …) or torchvision VGG-19 ('features.0.weight', …), "
                     f"got keys {keys}, …")
