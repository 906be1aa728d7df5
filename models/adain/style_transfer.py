"""Arbitrary style transfer: encoder → AdaIN (or AdaCoN) at relu4_1 → decoder.

:class:`StyleTransfer` holds the frozen normalised-VGG encoder, the bottleneck modulation and
the decoder, loads the published pytorch-AdaIN weights unchanged, and offers the user controls
of the AdaIN paper: content–style trade-off α, interpolation between several styles, colour
preservation and spatial control with a mask. Images of any size come back at their size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from condnorm._check import check_shape
from condnorm.graph_mode import capturing_graph

from .color import coral, match_luminance, merge_luminance, split_luminance
from .modulation import AdaCoNModulation, AdaINModulation
from .networks import (
    AdaINDecoder,
    NormalisedVGG,
    WeightsSource,
    encoder_state_dict,
    load_weights_file,
    torchvision_init_,
)
from .spatial import mask_to_regions

__all__ = ["MODULATIONS", "PRESERVE_COLOR", "StyleTransfer", "color_postprocess", "color_preprocess"]

MODULATIONS = ("adain", "adacon")
PRESERVE_COLOR = ("coral", "luminance")
_MULTIPLE = 8  # the encoder downsamples by 8 (three pools)


def _pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad bottom/right so H and W are multiples of ``multiple`` (reflect where the image allows).

    In a captured graph (export, trace, compile) the padding is always ``reflect`` with sizes
    computed from the symbolic shape, so no branch depends on the input size; the graphs
    document their smallest input (16), for which reflect is always possible.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = (multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple
    if capturing_graph():
        return F.pad(x, (0, pw, 0, ph), mode="reflect")
    if not ph and not pw:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")


def _normalise_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise ValueError(f"style_weights: got {len(weights)} weight(s) for {count} style(s)")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"style_weights must be finite, non-negative and with a positive sum, got {weights}")
    return [w / sum(weights) for w in weights]


class StyleTransfer(nn.Module):
    r"""AdaIN style-transfer network (Huang & Belongie, 2017) with a choice of bottleneck modulation.

    .. math::
        t = \mathrm{AdaIN}(f(c), f(s)), \qquad T(c, s, \alpha) = g\big(\alpha t + (1-\alpha) f(c)\big)

    with ``f`` the normalised VGG-19 up to relu4_1 (frozen) and ``g`` the decoder. With
    ``modulation="adacon"`` the AdaIN step is replaced by :class:`condnorm.AdaCoN` driven by a
    style code computed from ``f(s)``.

    Args:
        modulation: ``"adain"`` or ``"adacon"``.
        style_dim: AdaCoN style-code size.
        style_hidden: width of AdaCoN's style encoder.
        adacon_kernel_size: AdaCoN's predicted kernel size.
        adacon_groups: AdaCoN's pointwise groups (``None``: its default).
        adacon_local_window: AdaCoN's local standardisation window (``None``: its default).
        eps: AdaIN's variance epsilon.
        unbiased: AdaIN's ``n − 1`` variance (pytorch-AdaIN's ``calc_mean_std``).
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - content: ``(N, 3, H, W)`` in [0, 1]; style(s): ``(N, 3, H', W')`` or ``(1, 3, H', W')``.
        - Output: ``(N, 3, H, W)`` in [0, 1].

    Example:
        >>> net = StyleTransfer()
        >>> net.transfer(torch.rand(1, 3, 37, 53), torch.rand(1, 3, 32, 32), alpha=0.5).shape
        torch.Size([1, 3, 37, 53])
    """

    def __init__(self, *, modulation: str = "adain", style_dim: int = 64, style_hidden: int = 256,
                 adacon_kernel_size: int = 3, adacon_groups: int | None = None,
                 adacon_local_window: int | None = None, eps: float = 1e-5, unbiased: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.encoder = NormalisedVGG(device=device, dtype=dtype)
        self.decoder = AdaINDecoder(device=device, dtype=dtype)
        if modulation == "adain":
            self.modulation: nn.Module = AdaINModulation(eps=eps, unbiased=unbiased)
        elif modulation == "adacon":
            self.modulation = AdaCoNModulation(
                512, style_dim=style_dim, hidden=style_hidden, kernel_size=adacon_kernel_size,
                groups=adacon_groups, local_window=adacon_local_window).to(device=device, dtype=dtype)
        else:
            raise ValueError(f"modulation must be one of {', '.join(MODULATIONS)}, got {modulation!r}")

    @classmethod
    def from_official(cls, *, vgg: WeightsSource, decoder: WeightsSource, **kwargs: Any) -> StyleTransfer:
        """Build an AdaIN network from pytorch-AdaIN's ``vgg_normalised.pth`` and ``decoder.pth``.

        Args:
            vgg: path or state dict of the normalised VGG (all 53 modules' convs; those beyond
                relu4_1 are dropped, every other key must match).
            decoder: path or state dict of the decoder (``decoder.pth``, ``decoder_iter_*.pth.tar``).
            **kwargs: forwarded to the constructor (``device``, ``dtype``).

        Raises:
            RuntimeError: on missing/unexpected keys or wrong shapes (strict loading).
        """
        net = cls(modulation="adain", eps=1e-5, unbiased=True, **kwargs)
        net.load_encoder(vgg)
        net.load_decoder(decoder)
        return net

    @classmethod
    def from_torchvision_vgg19(cls, *, weights: Any, decoder: WeightsSource | None = None,
                               **kwargs: Any) -> StyleTransfer:
        """Build the network on torchvision's VGG-19, to train a new decoder.

        Torchvision conv ``features.i`` goes to the official index (see
        :data:`~models.adain.networks.TORCHVISION_TO_OFFICIAL`) and the 1×1 input conv computes
        ImageNet's ``(x − mean) / std``. The published ``decoder.pth`` does not fit this encoder.

        Args:
            weights: a ``torchvision.models.VGG19_Weights`` member or name (``"DEFAULT"``; downloads
                unless cached), a file path, a torchvision VGG-19 state dict, or ``None`` for
                torchvision's random init (Kaiming, zero bias).
            decoder: optional decoder weights (path or state dict) to start from.
            **kwargs: forwarded to the constructor (``modulation``, …).

        Raises:
            RuntimeError: if the weights cannot be downloaded or found.
        """
        net = cls(**kwargs)
        if weights is None:
            torchvision_init_(net.encoder)
        else:
            net.load_encoder(weights)
        if decoder is not None:
            net.load_decoder(decoder)
        return net

    def load_encoder(self, weights: WeightsSource | Any) -> None:
        """Load official ``vgg_normalised`` or torchvision VGG-19 weights (see :func:`encoder_state_dict`)."""
        self.encoder.load_state_dict(encoder_state_dict(weights))

    def load_decoder(self, weights: WeightsSource) -> None:
        """Load decoder weights (path or state dict in the official layout), strictly."""
        state = dict(weights) if isinstance(weights, Mapping) else load_weights_file(Path(weights))
        self.decoder.load_state_dict(state)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        """Stylise ``content`` with ``style`` at full strength (see :meth:`transfer`)."""
        return self.transfer(content, style)

    def _styles(self, content: Tensor, style: Tensor | Sequence[Tensor], alpha: float,
                preserve_color: bool | str | None) -> list[Tensor]:
        sizes = check_shape(content, ("N", 3, "H", "W"), "content")
        styles = [style] if isinstance(style, Tensor) else list(style)
        if not styles:
            raise ValueError("style: give at least one style image")
        for i, s in enumerate(styles):
            check_shape(s, ("N'", 3, "H'", "W'"), f"style[{i}]")
            if s.shape[0] not in (1, sizes["N"]):
                raise ValueError(f"style[{i}]: batch size {s.shape[0]} must be 1 or the content's "
                                 f"{sizes['N']}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if preserve_color not in (False, None, *PRESERVE_COLOR):
            raise ValueError(f"preserve_color must be False, 'coral' or 'luminance', got {preserve_color!r}")
        return styles

    def transfer(self, content: Tensor, style: Tensor | Sequence[Tensor], *, alpha: float = 1.0,
                 style_weights: Sequence[float] | None = None, preserve_color: bool | str | None = False,
                 mask: Tensor | None = None) -> Tensor:
        """Stylise ``content`` with one or several styles.

        Args:
            content: ``(N, 3, H, W)`` in [0, 1], any H, W ≥ 9 (padded to a multiple of 8, cropped back).
            style: ``(N or 1, 3, H', W')`` in [0, 1], H', W' ≥ 9, or a list of them (sizes may differ).
            alpha: content–style trade-off; 0 decodes the content features unchanged.
            style_weights: interpolation weights for several styles (normalised to sum 1; equal if
                ``None``); the target is the weighted sum of the per-style modulated features.
            preserve_color: ``"coral"`` gives each style the content's colour mean and covariance
                first; ``"luminance"`` stylises the luminance only and keeps the content's chroma.
            mask: spatial control: a binary mask (foreground → the first of exactly two styles) or
                an integer map of style ids, ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``, any size.

        Returns:
            ``(N, 3, H, W)`` stylised images, clamped to [0, 1].

        Raises:
            ValueError: on wrong shapes, α outside [0, 1], bad weights, an unknown colour mode, or
                a mask combined with ``style_weights``.
        """
        styles = self._styles(content, style, alpha, preserve_color)
        if mask is not None and style_weights is not None:
            raise ValueError("use either mask (one style per region) or style_weights (a mixture), not both")
        weights = _normalise_weights(style_weights, len(styles)) if mask is None else None
        content, styles, chroma = color_preprocess(content, styles, preserve_color)
        h, w = content.shape[-2:]
        style_feats = [self.encode(s).expand(len(content), -1, -1, -1) for s in styles]

        def target(feat: Tensor) -> Tensor:
            if mask is not None:
                padded = (h + -h % _MULTIPLE, w + -w % _MULTIPLE)
                regions = mask_to_regions(mask.to(content.device), len(styles), (h, w), padded,
                                          feat.shape[-2:]).to(feat.dtype)
                return self.modulation.regional(feat, style_feats, regions)
            if len(styles) == 1:
                return self.modulation(feat, style_feats[0])
            return sum(wt * self.modulation(feat, s) for wt, s in zip(weights, style_feats))

        return color_postprocess(self.stylise(content, target, alpha), chroma)

    def encode(self, image: Tensor) -> Tensor:
        """relu4_1 features ``(N, 512, H/8, W/8)`` of an image in [0, 1], in float32 under autocast."""
        return _for_statistics(self.encoder.encode(image))

    def stylise(self, content: Tensor, target: Callable[[Tensor], Tensor], alpha: float | Tensor) -> Tensor:
        """The core every form of transfer shares (eager, exported graphs, precomputed codes).

        Pad to a multiple of 8 → encode → ``target(features)`` (the modulated features) →
        blend with ``α`` → decode → crop back to the content's size.

        Args:
            content: ``(N, 3, H, W)`` in [0, 1].
            target: the modulated relu4_1 features, from the content's features.
            alpha: content–style trade-off (a float, or a 0-d tensor in exported graphs).

        Returns:
            ``(N, 3, H, W)``, not clamped.
        """
        h, w = content.shape[-2], content.shape[-1]
        feat = self.encode(_pad_to_multiple(content, _MULTIPLE))
        return self.decoder(torch.lerp(feat, target(feat), alpha))[..., :h, :w]


def color_preprocess(content: Tensor, styles: list[Tensor], preserve_color: bool | str | None
                     ) -> tuple[Tensor, list[Tensor], Tensor | None]:
    """Colour preservation before the network (shared by :meth:`StyleTransfer.transfer` and exported runs).

    ``"coral"`` gives each style the content's colour statistics; ``"luminance"`` matches the
    styles' luminance to the content's and feeds the content's luminance (as RGB), keeping its
    chroma for :func:`color_postprocess`.

    Returns:
        ``(content, styles, chroma)``; ``chroma`` is None unless ``preserve_color="luminance"``.
    """
    if preserve_color == "coral":
        return content, [coral(s, content) for s in styles], None
    if preserve_color == "luminance":
        luminance, chroma = split_luminance(content)
        return luminance.expand(-1, 3, -1, -1), [match_luminance(s, content) for s in styles], chroma
    return content, styles, None


def color_postprocess(out: Tensor, chroma: Tensor | None) -> Tensor:
    """The decoder's output → the image: the content's chroma back (luminance mode), clamped to [0, 1].

    Shared by :meth:`StyleTransfer.transfer` and exported runs.
    """
    if chroma is not None:
        out = merge_luminance(split_luminance(out)[0], chroma.to(out.dtype))
    return out.clamp(0, 1)


def _for_statistics(feat: Tensor) -> Tensor:
    """Take channel statistics in float32 when autocast produced half-precision features."""
    return feat.float() if feat.dtype in (torch.float16, torch.bfloat16) else feat
