"""Training losses: adversarial, feature matching, VGG perceptual, KL, and AdaIN's content/style losses.

Every loss returns the unweighted term; the caller applies the λ weights (SPADE: λ_feat = 10,
λ_vgg = 10, λ_kld = 0.05; AdaIN: λ_style = 10).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VGG19_Weights

from condnorm import calc_mean_std
from condnorm._check import check_shape
from models.weights import read_weights

__all__ = [
    "GAN_MODES",
    "GANLoss",
    "VGGPerceptualLoss",
    "content_loss",
    "feature_matching_loss",
    "kld_loss",
    "style_statistics_loss",
]

GAN_MODES = ("hinge", "ls", "original", "wgan")
Prediction = Union[Tensor, Sequence[Union[Tensor, Sequence[Tensor]]]]  # noqa: UP007 (runtime alias)


def _last_maps(pred: Prediction) -> list[Tensor]:
    """One logit map per scale: a tensor, a list of tensors, or a list of per-scale feature lists."""
    if isinstance(pred, Tensor):
        return [pred]
    return [p[-1] if isinstance(p, (list, tuple)) else p for p in pred]


class GANLoss(nn.Module):
    r"""Adversarial loss on (multiscale) discriminator logits.

    ==========  =================================  ==================  ===========================
    mode        D, real                            D, fake             G (``target_is_real=True``)
    ==========  =================================  ==================  ===========================
    hinge       mean(relu(1 − x))                  mean(relu(1 + x))   −mean(x)
    ls          mean((x − 1)²)                     mean(x²)            mean((x − 1)²)
    original    BCE-with-logits(x, 1)              BCE(x, 0)           BCE(x, 1)
    wgan        −mean(x)                           mean(x)             −mean(x)
    ==========  =================================  ==================  ===========================

    A multiscale prediction (a list of per-scale lists, as from
    :class:`models.spade.MultiscaleDiscriminator`) uses the last element of each scale and
    averages the per-scale losses.

    Args:
        mode: one of ``"hinge"`` (SPADE's default), ``"ls"``, ``"original"``, ``"wgan"``.

    Example:
        >>> loss = GANLoss("hinge")
        >>> float(loss([[torch.zeros(1, 4)], [torch.full((1, 4), 2.0)]], True, for_discriminator=True))
        0.5
    """

    def __init__(self, mode: str = "hinge") -> None:
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"GANLoss: mode must be one of {GAN_MODES}, got {mode!r}")
        self.mode = mode

    def _single(self, x: Tensor, real: bool, for_discriminator: bool) -> Tensor:
        if self.mode == "hinge":
            if not for_discriminator:
                return -x.mean()
            return F.relu(1.0 - x).mean() if real else F.relu(1.0 + x).mean()
        if self.mode == "wgan":
            return -x.mean() if real else x.mean()
        target = torch.full_like(x, 1.0 if real else 0.0)
        if self.mode == "ls":
            return F.mse_loss(x, target)
        return F.binary_cross_entropy_with_logits(x, target)

    def forward(self, pred: Prediction, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        """Loss of ``pred`` against the real/fake target, averaged over scales."""
        if self.mode == "hinge" and not for_discriminator and not target_is_real:
            raise ValueError("GANLoss('hinge'): the generator loss needs target_is_real=True")
        maps = _last_maps(pred)
        if not maps:
            raise ValueError("GANLoss: got an empty prediction list")
        return torch.stack([self._single(x, target_is_real, for_discriminator) for x in maps]).mean()

    def extra_repr(self) -> str:
        return repr(self.mode)


def feature_matching_loss(
    fake_feats: Sequence[Sequence[Tensor]], real_feats: Sequence[Sequence[Tensor]]
) -> Tensor:
    r"""Discriminator feature matching (pix2pixHD), averaged over scales.

    .. math::
        \mathcal{L}_{FM} = \frac{1}{D}\sum_{i=1}^{D}\sum_{j=1}^{T_i - 1}
        \lVert F_{ij}(\mathrm{fake}) - F_{ij}(\mathrm{real}) \rVert_1^{\text{mean}}

    over every intermediate feature map of every scale (the last element of each list, the
    logits, is excluded); real features are detached. The official weight is
    :math:`\lambda_{feat}/D` per term with :math:`\lambda_{feat} = 10`: this function includes the
    :math:`1/D`, so the caller multiplies by :math:`\lambda_{feat}`.

    Args:
        fake_feats: per-scale feature lists for the fake batch.
        real_feats: the same for the real batch.

    Returns:
        A scalar.

    Example:
        >>> f = [[torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 3, 3)]]
        >>> r = [[torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 3, 3)]]
        >>> float(feature_matching_loss(f, r))
        1.0
    """
    if len(fake_feats) != len(real_feats) or not fake_feats:
        raise ValueError(f"feature_matching_loss: need the same non-zero number of scales, got "
                         f"{len(fake_feats)} fake and {len(real_feats)} real")
    total = fake_feats[0][0].new_zeros(())
    for fake, real in zip(fake_feats, real_feats):
        if len(fake) != len(real):
            raise ValueError(f"feature_matching_loss: a scale has {len(fake)} fake and {len(real)} real maps")
        for f, r in zip(fake[:-1], real[:-1]):
            total = total + F.l1_loss(f, r.detach())
    return total / len(fake_feats)


def kld_loss(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""KL divergence from :math:`N(\mu, e^{\log\sigma^2})` to :math:`N(0, I)`, summed (SPADE's VAE).

    .. math::
        \mathrm{KL} = -\tfrac{1}{2}\sum \left(1 + \log\sigma^2 - \mu^2 - \sigma^2\right)

    Summed over batch and dimensions, like the official code; multiply by λ_kld (0.05).

    Example:
        >>> float(kld_loss(torch.ones(2, 8), torch.zeros(2, 8)))  # 16 dims × μ²/2
        8.0
    """
    sizes = check_shape(mu, ("N", "Z"), "kld_loss mu")
    check_shape(logvar, ("N", "Z"), "kld_loss logvar", sizes)
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())


def content_loss(output: Tensor, target: Tensor) -> Tensor:
    """AdaIN content loss: MSE between the output's features and the AdaIN target features.

    Example:
        >>> float(content_loss(torch.ones(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)))
        1.0
    """
    if output.shape != target.shape:
        raise ValueError(f"content_loss: shapes differ, {tuple(output.shape)} vs {tuple(target.shape)}")
    return F.mse_loss(output, target)


def style_statistics_loss(
    feats_out: Sequence[Tensor],
    feats_style: Sequence[Tensor],
    *,
    eps: float = 1e-5,
    unbiased: bool = False,
) -> Tensor:
    r"""AdaIN style loss: matched channel statistics over several encoder layers.

    .. math::
        \mathcal{L}_s = \sum_{l} \lVert \mu(\phi_l(o)) - \mu(\phi_l(s)) \rVert_2^2
        + \lVert \sigma(\phi_l(o)) - \sigma(\phi_l(s)) \rVert_2^2

    with mean-reduced squared errors and the statistics of :func:`condnorm.calc_mean_std`.

    Args:
        feats_out: features of the output image, one map per layer (relu1_1 … relu4_1).
        feats_style: features of the style image, same layers.
        eps: added to the variance.
        unbiased: ``n - 1`` variance (the pytorch-AdaIN port's convention).

    Returns:
        A scalar.

    Example:
        >>> x = torch.randn(2, 4, 8, 8)
        >>> float(style_statistics_loss([x], [x]))
        0.0
    """
    if len(feats_out) != len(feats_style) or not feats_out:
        raise ValueError(f"style_statistics_loss: need the same non-zero number of layers, got "
                         f"{len(feats_out)} and {len(feats_style)}")
    total = feats_out[0].new_zeros(())
    for out, style in zip(feats_out, feats_style):
        out_mean, out_std = calc_mean_std(out, eps, unbiased)
        style_mean, style_std = calc_mean_std(style, eps, unbiased)
        total = total + F.mse_loss(out_mean, style_mean) + F.mse_loss(out_std, style_std)
    return total


# VGG-19 ``features`` up to relu5_1, in torchvision's layout (conv → ReLU, "M" = 2×2 max-pool).
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
_VGG_TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
VGGWeights = Union[str, os.PathLike, Mapping[str, Tensor], VGG19_Weights, None]  # noqa: UP007


def _vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    fin = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(fin, v, 3, padding=1), nn.ReLU()]
            fin = v
    return nn.Sequential(*layers)


def _download_vgg19(weights: VGG19_Weights) -> dict[str, Tensor]:
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as err:
        raise RuntimeError(
            f"VGGPerceptualLoss: could not obtain the VGG-19 weights {weights} from {weights.url} "
            f"({type(err).__name__}: {err}). Offline? Download that file elsewhere and pass its path "
            "as weights=..., or set the VGG loss weight (lambda_vgg) to 0 to train without it") from err


def _resolve_state_dict(weights: VGGWeights) -> Mapping[str, Tensor] | None:
    if weights is None or isinstance(weights, Mapping):
        return weights
    if isinstance(weights, VGG19_Weights):
        return _download_vgg19(weights)
    if isinstance(weights, str) and not Path(weights).exists():
        name = weights.removeprefix("VGG19_Weights.")
        if name in VGG19_Weights.__members__:
            return _download_vgg19(VGG19_Weights[name])
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"VGGPerceptualLoss: weights={str(weights)!r} is neither a file nor one "
                                f"of {list(VGG19_Weights.__members__)}")
    return read_weights(path)


def _features_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keep the ``features`` entries up to relu5_1 of a full or features-only VGG-19 state dict."""
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("features.")
        index = key.split(".", 1)[0]
        if index.isdigit() and int(index) <= _VGG_TAPS[-1]:
            out[key] = value
    return out


class VGGPerceptualLoss(nn.Module):
    r"""Perceptual loss on frozen VGG-19 features (SPADE/pix2pixHD form).

    .. math::
        \mathcal{L} = \sum_{k} w_k \,\lVert \phi_k(x) - \phi_k(y) \rVert_1^{\text{mean}}

    over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with weights 1/32, 1/16, 1/8, 1/4, 1; the
    target's features are taken without gradient. Inputs in ``[-1, 1]`` are mapped to ``[0, 1]``
    and normalised with the ImageNet mean/std the weights were trained with (the official SPADE
    code feeds ``[-1, 1]`` unnormalised). Only ``features[:30]`` of VGG-19 is kept; it is frozen
    (no dropout or batch norm, so the module's train/eval mode does not matter).

    Args:
        weights: ``"DEFAULT"`` / ``"IMAGENET1K_V1"`` / a :class:`torchvision.models.VGG19_Weights`
            (downloaded through torchvision, cached in ``$TORCH_HOME``), a path to a saved state
            dict, or a state dict. Full torchvision ``vgg19`` state dicts and ``features``-only ones
            (keys ``0.weight`` …, possibly truncated after relu5_1) are accepted. ``None`` keeps
            random weights (tests only).
        layer_weights: one weight per tapped layer.

    Raises:
        RuntimeError: when the weights cannot be downloaded (the message says how to go on offline).
        FileNotFoundError: for a path that does not exist.
        ValueError: for a state dict that lacks VGG-19 layers up to relu5_1 or has wrong shapes.

    Shape:
        - x, y: ``(N, 3, H, W)`` in ``[-1, 1]``, the same shape
        - output: scalar

    Example:
        >>> loss = VGGPerceptualLoss(weights=None)
        >>> float(loss(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)))
        0.0
    """

    def __init__(self, weights: VGGWeights = "DEFAULT",
                 layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)) -> None:
        super().__init__()
        if len(layer_weights) != len(_VGG_TAPS):
            raise ValueError(f"VGGPerceptualLoss: layer_weights needs {len(_VGG_TAPS)} values "
                             f"(relu1_1 … relu5_1), got {len(layer_weights)}")
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.features = _vgg19_features()
        state_dict = _resolve_state_dict(weights)
        if state_dict is not None:
            self._load_features(_features_state_dict(state_dict))
        self.features.requires_grad_(False)
        # [-1, 1] → ImageNet-normalised: ((x + 1) / 2 - mean) / std = x * in_scale + in_shift.
        std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self.register_buffer("in_scale", 0.5 / std, persistent=False)
        self.register_buffer("in_shift", (0.5 - mean) / std, persistent=False)

    def _load_features(self, state_dict: dict[str, Tensor]) -> None:
        expected = self.features.state_dict()
        missing = [k for k in expected if k not in state_dict]
        wrong = [k for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
        if missing or wrong:
            raise ValueError(f"VGGPerceptualLoss: not a VGG-19 state dict: missing {missing}, wrong shapes "
                             f"{wrong}; pass torchvision's vgg19 weights (full or features-only)")
        self.features.load_state_dict(state_dict)

    def _taps(self, x: Tensor) -> list[Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG_TAPS:
                taps.append(x)
        return taps

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Weighted L1 distance between the VGG features of ``x`` and of ``y`` (no gradient to ``y``)."""
        sizes = check_shape(x, ("N", 3, "H", "W"), "VGGPerceptualLoss x")
        check_shape(y, ("N", 3, "H", "W"), "VGGPerceptualLoss y", sizes)
        x_feats = self._taps(x * self.in_scale + self.in_shift)
        with torch.no_grad():
            y_feats = self._taps(y * self.in_scale + self.in_shift)
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(self.layer_weights, x_feats, y_feats))
