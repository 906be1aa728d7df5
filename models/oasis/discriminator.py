"""OASIS's U-Net segmentation discriminator: per-pixel logits over the ``label_nc`` classes and "fake".

Written from the paper (Schönfeld, Sushko et al., "You Only Need Adversarial Supervision for Semantic
Image Synthesis", ICLR 2021) and the published architecture's facts (widths, block order); the public
implementation is AGPL and none of its code is copied. The module names (``body_down``,
``body_up``, ``layer_up_last``, ``conv1``, ``conv2``, ``conv_s``) and their ``nn.Sequential`` positions
follow the published checkpoints' state-dict layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from condnorm._check import check_shape

__all__ = ["OASIS_D_WIDTHS", "OASISDiscriminator", "UNetResBlock"]

#: Widths of the six down blocks of the paper's discriminator (the up path mirrors them, ending at 64).
OASIS_D_WIDTHS: tuple[int, ...] = (128, 128, 256, 256, 512, 512)


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return nn.utils.spectral_norm(module) if enabled else module


def _init_conv_(conv: nn.Conv2d, gain: float = 0.02) -> None:
    weight = getattr(conv, "weight_orig", None)
    nn.init.xavier_normal_(conv.weight if weight is None else weight, gain=gain)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class UNetResBlock(nn.Module):
    r"""One residual block of the OASIS discriminator, going down (×½) or up (×2).

    .. math::
        y = s(x) + r(x)

    - down: :math:`r = \mathrm{avgpool}_2(\mathrm{conv}_2(\phi(\mathrm{conv}_1(\phi(x)))))`,
      :math:`s = \mathrm{avgpool}_2(\mathrm{conv}_s(x))`; the ``first`` block of the network drops the
      leading :math:`\phi` (it sees the image) and pools before its 1×1 shortcut (the same map:
      a 1×1 conv and a 2×2 average pool commute);
    - up: :math:`r = \mathrm{conv}_2(\phi(\mathrm{conv}_1(\mathrm{up}_2(\phi(x)))))`,
      :math:`s = \mathrm{conv}_s(\mathrm{up}_2(x))`,

    with :math:`\phi` = LeakyReLU(0.2), 3×3 convs (padding 1) of width ``fout``, nearest ×2
    upsampling, and the 1×1 learned shortcut ``conv_s`` only when ``fin != fout`` (identity
    otherwise). Every conv is spectrally normalised when ``spectral``.

    Args:
        fin: input channels.
        fout: output channels.
        direction: ``"down"`` or ``"up"``.
        first: the network's first down block (no activation before its first conv).
        spectral: spectral normalisation on the block's convs.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - x: ``(N, fin, H, W)``
        - output: ``(N, fout, H/2, W/2)`` going down, ``(N, fout, 2H, 2W)`` going up

    Example:
        >>> down, up = UNetResBlock(3, 8, direction="down", first=True), UNetResBlock(8, 4, direction="up")
        >>> x = torch.randn(2, 3, 16, 16)
        >>> tuple(down(x).shape), tuple(up(down(x)).shape)
        ((2, 8, 8, 8), (2, 4, 16, 16))
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        *,
        direction: str,
        first: bool = False,
        spectral: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if direction not in ("down", "up"):
            raise ValueError(f"UNetResBlock: direction must be 'down' or 'up', got {direction!r}")
        if first and direction != "down":
            raise ValueError("UNetResBlock: only a down block can be the first block")
        dd = {"device": device, "dtype": dtype}
        self.fin, self.fout, self.direction, self.first = fin, fout, direction, first
        conv1 = _sn(nn.Conv2d(fin, fout, 3, padding=1, **dd), spectral)
        if first:
            self.conv1 = nn.Sequential(conv1)
        elif direction == "up":
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2.0, mode="nearest"), conv1)
        else:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2), conv1)
        self.conv2 = nn.Sequential(nn.LeakyReLU(0.2), _sn(nn.Conv2d(fout, fout, 3, padding=1, **dd), spectral))
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.conv_s = _sn(nn.Conv2d(fin, fout, 1, **dd), spectral)

    def shortcut(self, x: Tensor) -> Tensor:
        """The skip branch :math:`s(x)`."""
        if self.direction == "up":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        elif self.first:
            x = F.avg_pool2d(x, 2)
        if self.learned_shortcut:
            x = self.conv_s(x)
        if self.direction == "down" and not self.first:
            x = F.avg_pool2d(x, 2)
        return x

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, ("N", self.fin, "H", "W"), "UNetResBlock input")
        dx = self.conv2(self.conv1(x))
        if self.direction == "down":
            dx = F.avg_pool2d(dx, 2)
        return self.shortcut(x) + dx


class OASISDiscriminator(nn.Module):
    r"""The OASIS discriminator: a U-Net segmenter with ``label_nc + 1`` output channels.

    It sees the image only (no label map). ``len(widths)`` down blocks halve the resolution
    (widths ``widths[0], widths[1], …``); as many up blocks double it back, each after the first
    taking the previous up block's output concatenated (encoder map first) with the down block of
    the same resolution; a plain 1×1 conv (no spectral norm) maps ``last_width`` channels to the
    logits. Up block ``0`` maps ``widths[-1] → widths[-2]``, up block ``i`` maps
    ``2·widths[-1-i] → widths[-2-i]``, the last one ``2·widths[0] → last_width``.
    The paper's network is ``widths=(128, 128, 256, 256, 512, 512)``, ``last_width=64``, spectral norm
    on every residual conv, xavier-normal(0.02) initialisation and zero biases.

    **Output channels (the "N+1" convention, OASIS issue 34):** channel ``c < label_nc`` is the
    logit of semantic class ``c``; channel ``label_nc`` (0-based, the last one,
    :attr:`fake_index`) is the "fake" class. The public code puts "fake" at channel 0 and shifts
    the classes by one; here the class ids keep their meaning.

    Args:
        label_nc: number of semantic classes ``N``; the output has ``N + 1`` channels.
        input_nc: image channels.
        widths: widths of the down blocks (at least 2); the input's height and width must be divisible
            by ``2 ** len(widths)``.
        last_width: width of the last up block.
        spectral: spectral normalisation on the residual blocks' convs.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - image: ``(N, input_nc, H, W)``
        - output: ``(N, label_nc + 1, H, W)`` per-pixel logits

    Example:
        >>> d = OASISDiscriminator(5, widths=(8, 8, 16), last_width=8)
        >>> tuple(d(torch.randn(2, 3, 16, 24)).shape), d.fake_index
        ((2, 6, 16, 24), 5)
    """

    def __init__(
        self,
        label_nc: int,
        *,
        input_nc: int = 3,
        widths: Sequence[int] = OASIS_D_WIDTHS,
        last_width: int = 64,
        spectral: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise ValueError(f"OASISDiscriminator: need at least 2 down blocks, got widths={widths}")
        if label_nc < 1:
            raise ValueError(f"OASISDiscriminator: label_nc must be >= 1, got {label_nc}")
        dd = {"device": device, "dtype": dtype, "spectral": spectral}
        self.label_nc, self.input_nc, self.widths = label_nc, input_nc, widths
        n = len(widths)
        chans = (input_nc, *widths)
        self.body_down = nn.ModuleList(
            UNetResBlock(chans[i], chans[i + 1], direction="down", first=i == 0, **dd) for i in range(n)
        )
        ups = [UNetResBlock(widths[-1], widths[-2], direction="up", **dd)]
        ups += [UNetResBlock(2 * widths[-1 - i], widths[-2 - i], direction="up", **dd) for i in range(1, n - 1)]
        ups.append(UNetResBlock(2 * widths[0], last_width, direction="up", **dd))
        self.body_up = nn.ModuleList(ups)
        self.layer_up_last = nn.Conv2d(last_width, label_nc + 1, 1, device=device, dtype=dtype)
        self.reset_parameters()

    @property
    def fake_index(self) -> int:
        """Output channel of the "fake" class: ``label_nc`` (the last one)."""
        return self.label_nc

    @property
    def divisor(self) -> int:
        """The input's height and width must be multiples of this (``2 ** len(widths)``)."""
        return 2 ** len(self.widths)

    def reset_parameters(self) -> None:
        """Xavier-normal(0.02) weights (through ``weight_orig`` under spectral norm), zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                _init_conv_(module)

    def forward(self, image: Tensor) -> Tensor:
        sizes = check_shape(image, ("N", self.input_nc, "H", "W"), "OASISDiscriminator image")
        if sizes["H"] % self.divisor or sizes["W"] % self.divisor:
            raise ValueError(f"OASISDiscriminator image: height and width must be multiples of {self.divisor} "
                             f"(2 ** {len(self.widths)} down blocks), got {tuple(image.shape[-2:])}")
        skips = []
        x = image
        for block in self.body_down:
            x = block(x)
            skips.append(x)
        x = self.body_up[0](x)
        for i, block in enumerate(self.body_up[1:], start=1):
            x = block(torch.cat((skips[-1 - i], x), dim=1))
        return self.layer_up_last(x)
