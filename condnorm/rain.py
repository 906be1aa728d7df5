"""SEAN's region-adaptive normalization (Zhu et al., CVPR 2020): per-region styles plus SPADE."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._check import check_finite, check_shape
from .functional import NoiseSource, inject_noise, modulate, region_broadcast, resize_segmap
from .norm import NormSpec, apply_norm, make_norm
from .spade import SPADE

__all__ = ["RAIN", "SEAN", "RegionAdaptiveNorm2d"]


class RegionAdaptiveNorm2d(nn.Module):
    r"""Region-adaptive normalization: a per-region style branch blended with a SPADE branch.

    .. math::
        x' = x + \sigma \odot z,\qquad
        S = \sum_l m_l\,\mathrm{ReLU}(W_l c_l + b_l),\qquad
        \gamma = \alpha_\gamma\,\mathrm{conv}_\gamma(S) + (1 - \alpha_\gamma)\,\gamma_{\mathrm{SPADE}}(m)

    (β likewise with :math:`\alpha_\beta`), and
    :math:`\mathrm{out} = \mathrm{norm}(x')\,(1 + \gamma) + \beta`. Here ``m`` is the semantic
    map resized (nearest) to ``x``, ``c_l`` the style code of region ``l``,
    :math:`\alpha = \mathrm{sigmoid}(\cdot)` of the learned ``blending_gamma``/``blending_beta``
    (0 at init, so α = 0.5), and ``z`` one N(0, 1) value per pixel shared by all channels, scaled
    by the per-channel ``noise_var`` (0 at init). The ``L`` per-class linears are one
    ``(L, D, D)`` weight applied as a batched product, so any number of classes works.

    The names follow SEAN's ``ACE`` layer (``blending_gamma``, ``blending_beta``, ``noise_var``,
    ``param_free_norm``, ``conv_gamma``, ``conv_beta``, ``Spade.mlp_*``); SEAN state dicts load
    with ``strict=True``: their ``fc_mu{j}.weight/bias`` are stacked into ``fc_mu_weight`` /
    ``fc_mu_bias``, and the unused ``Spade.param_free_norm`` buffers are dropped. Departures
    from SEAN: ``conv_gamma``/``conv_beta`` start at zero (identity after normalisation at
    init), the normalizer defaults to ``"batch"`` (SEAN hard-codes SyncBN; the state-dict keys
    are the same, and :func:`condnorm.convert_sync_batchnorm` converts for DDP), and noise is
    device-agnostic and seedable.

    ``style_branch=False`` builds SEAN's ACE layer without its style branch (``use_rgb=False``,
    the generator's ``up_3``): only the SPADE γ, β (and the noise); style codes are accepted and
    ignored, so it plugs in wherever a RAIN layer does, and SEAN's checkpoint entries for the
    absent branch (``blending_*``, ``fc_mu*``, ``conv_gamma``/``conv_beta``) are dropped on load.

    Naming: the project calls this layer RAIN (alias ``SEAN``). It is not RainNet's
    region-aware adaptive instance normalization (Ling et al., 2021), which harmonises a
    foreground with its background and has no classes or style codes.

    Noise is injected in training **and** evaluation, as in SEAN (the network was trained with
    it). For deterministic output pass ``noise`` (a ``(N, 1, H, W)`` tensor, zeros for none, or
    a ``torch.Generator``; a CPU generator gives the same draw on every device), or build the
    layer with ``noise=False`` (no ``noise_var``; a checkpoint's ``noise_var`` is then ignored).

    Args:
        num_features: C, channels of ``x``.
        label_nc: L, the number of regions/classes.
        style_dim: D, length of each region's style code (512 in SEAN).
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        hidden: width of the SPADE branch's shared embedding (128).
        kernel_size: kernel of the SPADE branch's and the style convolutions (3).
        noise: inject per-pixel noise scaled by the learned ``noise_var``.
        style_branch: build the per-region style branch (``False``: SPADE γ, β only, see above).
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the normalizer (``eps``, ``momentum``).

    Shape:
        - x: ``(N, C, H, W)``
        - segmap: ``(N, L, H', W')`` one-hot or soft map
        - style_codes: ``(N, L, D)``, e.g. from :func:`condnorm.functional.region_average_pool`
          (None, or ignored, without the style branch)
        - noise: ``(N, 1, H, W)``, a callable giving one, a ``torch.Generator`` or None
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = RAIN(16, label_nc=3, style_dim=32)
        >>> x, seg, codes = torch.randn(2, 16, 8, 8), torch.rand(2, 3, 32, 32), torch.randn(2, 3, 32)
        >>> layer(x, seg, codes, torch.Generator().manual_seed(0)).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        label_nc: int,
        *,
        style_dim: int = 512,
        norm: NormSpec = "batch",
        hidden: int = 128,
        kernel_size: int = 3,
        noise: bool = True,
        style_branch: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.label_nc = label_nc
        self.style_dim = style_dim
        self.style_branch = style_branch
        self.noise_var = nn.Parameter(torch.zeros(num_features, **dd)) if noise else None
        self.param_free_norm = make_norm(norm, num_features, **norm_kw, **dd)
        if style_branch:
            self.blending_gamma = nn.Parameter(torch.zeros(1, **dd))
            self.blending_beta = nn.Parameter(torch.zeros(1, **dd))
            self.fc_mu_weight = nn.Parameter(torch.empty(label_nc, style_dim, style_dim, **dd))
            self.fc_mu_bias = nn.Parameter(torch.empty(label_nc, style_dim, **dd))
            pad = kernel_size // 2
            self.conv_gamma = nn.Conv2d(style_dim, num_features, kernel_size, padding=pad, **dd)
            self.conv_beta = nn.Conv2d(style_dim, num_features, kernel_size, padding=pad, **dd)
        self.Spade = SPADE(num_features, label_nc, norm="none", kernel_size=kernel_size, hidden=hidden, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Per-class linears as ``nn.Linear``; zero γ/β convs, blend logits and noise scale."""
        if self.noise_var is not None:
            nn.init.zeros_(self.noise_var)
        self.Spade.reset_parameters()
        if not self.style_branch:
            return
        bound = self.style_dim**-0.5  # nn.Linear's default, per class
        nn.init.uniform_(self.fc_mu_weight, -bound, bound)
        nn.init.uniform_(self.fc_mu_bias, -bound, bound)
        for p in (self.blending_gamma, self.blending_beta, *self.conv_gamma.parameters(),
                  *self.conv_beta.parameters()):
            nn.init.zeros_(p)

    def forward(
        self,
        x: Tensor,
        segmap: Tensor,
        style_codes: Tensor | None,
        noise: NoiseSource = None,
        **norm_kwargs: Any,
    ) -> Tensor:
        """Normalise ``x`` (plus noise) and modulate it with the blended γ, β.

        ``norm_kwargs`` go to the normalizer unchanged (:func:`condnorm.norm.apply_norm`).
        """
        sizes = check_shape(x, ("N", "C", "H", "W"), "RAIN x", {"C": self.num_features})
        check_shape(segmap, ("N", "L", "H'", "W'"), "RAIN segmap", {"N": sizes["N"], "L": self.label_nc})
        if self.style_branch:
            check_shape(style_codes, ("N", "L", "D"), "RAIN style_codes",
                        {"N": sizes["N"], "L": self.label_nc, "D": self.style_dim})
            check_finite(style_codes, "RAIN style_codes")
        if self.noise_var is not None:
            x = inject_noise(x, self.noise_var, noise, name="RAIN noise")
        elif noise is not None:
            raise ValueError("RAIN noise: this layer was built with noise=False; pass noise=None")
        segmap = resize_segmap(segmap.to(x.dtype), x.shape[-2:])
        if not self.style_branch:
            gamma, beta = self.Spade.gamma_beta(segmap, x.shape[-2:])
            return modulate(apply_norm(self.param_free_norm, x, norm_kwargs), gamma, beta)
        # (L, N, D) @ (L, D, D)^T: every class's linear on every sample's code for that class.
        styles = torch.baddbmm(self.fc_mu_bias.unsqueeze(1), style_codes.to(x.dtype).transpose(0, 1),
                               self.fc_mu_weight.transpose(1, 2)).relu().transpose(0, 1)
        style_map = region_broadcast(segmap, styles)
        gamma_spade, beta_spade = self.Spade.gamma_beta(segmap, x.shape[-2:])
        a_gamma, a_beta = self.blending_gamma.sigmoid(), self.blending_beta.sigmoid()
        gamma = gamma_spade + a_gamma * (self.conv_gamma(style_map) - gamma_spade)
        beta = beta_spade + a_beta * (self.conv_beta(style_map) - beta_spade)
        return modulate(apply_norm(self.param_free_norm, x, norm_kwargs), gamma, beta)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        if not self.style_branch:  # SEAN saves the unused branch of its use_rgb=False layer
            for key in [k for k in state_dict if k.startswith(prefix)]:
                if key[len(prefix):].startswith(("blending_", "fc_mu", "conv_gamma.", "conv_beta.")):
                    state_dict.pop(key)
        # SEAN (ACE) keeps one Linear per class, fc_mu{j}; stack them when all L are present.
        for name, target in (("weight", "fc_mu_weight"), ("bias", "fc_mu_bias")):
            keys = [f"{prefix}fc_mu{j}.{name}" for j in range(self.label_nc)]
            if self.style_branch and all(k in state_dict for k in keys):
                state_dict[prefix + target] = torch.stack([state_dict.pop(k) for k in keys])
        # SEAN's inner SPADE has a normalizer it never uses; this one has none.
        for buf in ("running_mean", "running_var", "num_batches_tracked"):
            state_dict.pop(f"{prefix}Spade.param_free_norm.{buf}", None)
        if self.noise_var is None:
            state_dict.pop(prefix + "noise_var", None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, label_nc={self.label_nc}, style_dim={self.style_dim}, "
                f"noise={self.noise_var is not None}, style_branch={self.style_branch}")


RAIN = RegionAdaptiveNorm2d
SEAN = RegionAdaptiveNorm2d
