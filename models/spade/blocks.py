"""Building blocks shared by the SPADE-family networks: the modulated residual block and its helpers."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .spectral import spectral_conv

__all__ = ["ModulatedResBlock", "maybe_spectral_norm", "xavier_init_"]


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` with spectral normalisation when ``enabled``.

    Uses the hook API (:func:`torch.nn.utils.spectral_norm`), whose state-dict keys
    (``weight_orig``, ``weight_u``, ``weight_v``) are those of the official SPADE checkpoints.

    Example:
        >>> conv = maybe_spectral_norm(nn.Conv2d(4, 8, 3), True)
        >>> sorted(k for k in conv.state_dict() if k.startswith("weight"))
        ['weight_orig', 'weight_u', 'weight_v']
    """
    return nn.utils.spectral_norm(module) if enabled else module


def xavier_init_(module: nn.Module, gain: float = 0.02) -> None:
    """Official SPADE initialisation of one conv/linear layer: xavier-normal weight, zero bias.

    Spectrally normalised layers are initialised through ``weight_orig``.

    Example:
        >>> conv = nn.Conv2d(4, 8, 3)
        >>> xavier_init_(conv)
        >>> torch.count_nonzero(conv.bias).item()
        0
    """
    weight = getattr(module, "weight_orig", None)
    if weight is None:
        weight = module.weight
    nn.init.xavier_normal_(weight, gain=gain)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


class ModulatedResBlock(nn.Module):
    r"""Pre-activation residual block whose normalisations are conditional (SPADE's ``SPADEResnetBlock``).

    .. math::
        y = s(x) + \mathrm{conv}_1(\phi(\mathrm{norm}_1(\mathrm{conv}_0(\phi(\mathrm{norm}_0(x, c))), c))),
        \qquad s(x) = \begin{cases} \mathrm{conv}_s(\mathrm{norm}_s(x, c)) & f_{in} \ne f_{out}\\
        x & \text{otherwise}\end{cases}

    with :math:`\phi` = LeakyReLU(0.2), 3×3 convs through ``fmiddle = min(fin, fout)`` channels and a
    bias-free 1×1 learned shortcut (no activation). Spectral norm divides whichever is smaller,
    the weight or the output, by σ (exact; :func:`~models.spade.spectral.spectral_conv`).
    Parameter names follow the official block (``conv_0``, ``conv_1``, ``conv_s``, ``norm_0``,
    ``norm_1``, ``norm_s``), so with
    ``norm_layer=partial(condnorm.SPADE, label_nc=L, norm="syncbatch")`` the official SPADE
    state dicts load with ``strict=True``. Any conditional norm called as ``norm(x, *cond)`` fits
    (CLADE, SEAN); ``norm_prefix="ace"`` gives SEAN's names (``ace_0``, ``ace_1``, ``ace_s``).

    Args:
        fin: input channels.
        fout: output channels.
        norm_layer: ``norm_layer(C)`` builds a conditional norm for ``C`` channels; bind its other
            arguments (label count, device, dtype) with :func:`functools.partial`.
        spectral: spectral normalisation on the three convs (the official generator's default).
        norm_prefix: the norms are named ``{norm_prefix}_0``, ``{norm_prefix}_1``, ``{norm_prefix}_s``.
        device: device of the convs.
        dtype: dtype of the convs.

    Shape:
        - x: ``(N, fin, H, W)``
        - cond: whatever ``norm_layer``'s modules take, e.g. a segmap ``(N, L, H', W')``
        - output: ``(N, fout, H, W)``

    Example:
        >>> from functools import partial
        >>> import condnorm
        >>> block = ModulatedResBlock(16, 8, partial(condnorm.SPADE, label_nc=5, hidden=16))
        >>> block(torch.randn(2, 16, 8, 8), torch.rand(2, 5, 8, 8)).shape
        torch.Size([2, 8, 8, 8])
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        norm_layer: Callable[[int], nn.Module],
        *,
        spectral: bool = True,
        norm_prefix: str = "norm",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.fin, self.fout = fin, fout
        self._norm_names = (f"{norm_prefix}_0", f"{norm_prefix}_1", f"{norm_prefix}_s")
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = maybe_spectral_norm(nn.Conv2d(fin, fmiddle, 3, padding=1, **dd), spectral)
        self.conv_1 = maybe_spectral_norm(nn.Conv2d(fmiddle, fout, 3, padding=1, **dd), spectral)
        self.add_module(self._norm_names[0], norm_layer(fin))
        self.add_module(self._norm_names[1], norm_layer(fmiddle))
        if self.learned_shortcut:
            self.conv_s = maybe_spectral_norm(nn.Conv2d(fin, fout, 1, bias=False, **dd), spectral)
            self.add_module(self._norm_names[2], norm_layer(fin))

    def convs(self) -> list[nn.Module]:
        """The block's own convolutions (not those inside the norms), e.g. for initialisation."""
        return [self.conv_0, self.conv_1] + ([self.conv_s] if self.learned_shortcut else [])

    def norms(self) -> list[nn.Module]:
        """The block's conditional norms, whatever their prefix (``norm_*``, SEAN's ``ace_*``)."""
        return [getattr(self, name) for name in self._norm_names if hasattr(self, name)]

    def forward(self, x: Tensor, *cond: Tensor) -> Tensor:
        """Residual update of ``x``; ``cond`` is passed to every norm."""
        norm_0, norm_1, norm_s = (getattr(self, name, None) for name in self._norm_names)
        shortcut = spectral_conv(self.conv_s, norm_s(x, *cond)) if self.learned_shortcut else x
        dx = spectral_conv(self.conv_0, F.leaky_relu(norm_0(x, *cond), 0.2))
        dx = spectral_conv(self.conv_1, F.leaky_relu(norm_1(dx, *cond), 0.2))
        return shortcut + dx

    def extra_repr(self) -> str:
        return f"{self.fin}, {self.fout}, learned_shortcut={self.learned_shortcut}"
