"""SPADE: spatially-adaptive normalization (Park et al., CVPR 2019)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._check import check_ids, check_shape
from .functional import modulate, paint_columns, resize_segmap
from .graph_mode import capturing_graph, exporting_onnx
from .norm import NormSpec, apply_norm, make_norm
from .semantic_map import (
    LabelWindows,
    SemanticMap,
    bag_sum,
    fold_binary_extra,
    label_conv2d,
    label_windows,
    window_conv,
)

__all__ = ["SPADE", "SpatiallyAdaptiveNorm2d"]

class SPADE(nn.Module):
    r"""Spatially-adaptive (de)normalization.

    .. math::
        \mathrm{out} = \mathrm{norm}(x)\,(1 + \gamma(m)) + \beta(m),\quad
        \gamma, \beta = \mathrm{conv}_{\gamma,\beta}(\mathrm{ReLU}(\mathrm{conv}(m)))

    where ``m`` is the semantic map resized (nearest) to ``x``'s size. Parameter names
    follow the official implementation (``param_free_norm``, ``mlp_shared.0``, ``mlp_gamma``,
    ``mlp_beta``), so official state dicts load with ``strict=True``. ``mlp_gamma`` and
    ``mlp_beta`` start at zero, making the layer the identity after normalisation.

    Hard label maps (integer ids, or a :class:`~condnorm.SemanticMap` of ids plus dense
    channels such as instance edges) take an exact fast path. On a one-hot map ``mlp_shared`` is
    a sum of weight slices picked by the ids in the window (:func:`~condnorm.semantic_map.label_conv2d`), so
    it depends only on the window's ids; ``mlp_gamma``/``mlp_beta`` then depend only on the
    ``(2k−1)²`` patch. Label maps are made of regions and have few distinct windows
    (:class:`~condnorm.semantic_map.LabelWindows`; ~1,600 at 256² on a scene layout against 65,536 pixels):
    ``mlp_shared`` runs once per distinct window, the γ/β weights multiply each distinct window
    once per tap, each distinct patch sums its taps, and γ, β are painted back per pixel. This
    cuts the FLOPs by the ratio of pixels to windows; maps with more than ``window_fraction``
    distinct windows per pixel (small or noisy maps) run ``mlp_gamma``/``mlp_beta`` as
    convolutions. The result equals the one-hot map's up to float
    rounding. While tracing or compiling, ids use the static-shape :func:`~condnorm.semantic_map.label_conv2d`.

    Export: traces with TorchScript, compiles with ``fullgraph=True`` and exports to ONNX. ONNX
    graphs keep the per-window/patch path for ids (ONNX ``Unique`` numbers the windows, at any
    map size), so onnxruntime skips the same FLOPs as eager PyTorch; their extra channels must
    hold 0/1 (instance edges), which the graph cannot check.

    Args:
        num_features: C, channels of ``x``.
        label_nc: L, channels of the semantic map.
        norm: the parameter-free normalizer (see :func:`condnorm.make_norm`).
        kernel_size: kernel of the three convolutions (the paper's 3).
        hidden: width of the shared embedding (128 in the paper).
        window_fraction: on hard label maps, compute γ, β per distinct label patch when the map
            has at most this many distinct windows per pixel; above it, ``mlp_gamma``/``mlp_beta``
            run as convolutions. The default 0.25 bounds the per-patch FLOPs at a quarter of the
            convolutions'; ``0`` always takes the convolutions, ``inf`` always the patches (the
            result is the same up to float rounding).
        device: parameter device.
        dtype: parameter dtype.
        **norm_kw: passed to the normalizer (``eps``, ``momentum``).

    Shape:
        - x: ``(N, C, H, W)``
        - segmap: ``(N, L, H', W')`` one-hot or soft map; ``(N, H', W')`` integer ids in ``[0, L)``;
          or a :class:`~condnorm.SemanticMap` of ids in ``[0, L - E)`` and ``E`` extra channels
        - output: ``(N, C, H, W)``

    Example:
        >>> layer = SPADE(16, label_nc=5)
        >>> x, seg = torch.randn(2, 16, 8, 8), torch.rand(2, 5, 32, 32)
        >>> layer(x, seg).shape
        torch.Size([2, 16, 8, 8])
        >>> ids = torch.randint(5, (2, 32, 32))
        >>> layer(x, ids).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        label_nc: int,
        *,
        norm: NormSpec = "batch",
        kernel_size: int = 3,
        hidden: int = 128,
        window_fraction: float = 0.25,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **norm_kw: Any,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"SPADE: kernel_size must be odd to keep the size, got {kernel_size}")
        dd = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.label_nc = label_nc
        self.window_fraction = window_fraction
        pad = kernel_size // 2
        self.param_free_norm = make_norm(norm, num_features, **norm_kw, **dd)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_nc, hidden, kernel_size, padding=pad, **dd), nn.ReLU()
        )
        self.mlp_gamma = nn.Conv2d(hidden, num_features, kernel_size, padding=pad, **dd)
        self.mlp_beta = nn.Conv2d(hidden, num_features, kernel_size, padding=pad, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the γ and β predictors (identity after normalisation)."""
        for conv in (self.mlp_gamma, self.mlp_beta):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def gamma_beta(self, segmap: Tensor | SemanticMap,
                   size: tuple[int, int] | torch.Size) -> tuple[Tensor, Tensor]:
        """Predict γ and β, each ``(N, C, H, W)``, from ``segmap`` resized to ``size = (H, W)``.

        The unchecked core of :meth:`forward` (any segmap form it takes), shared with layers that
        blend SPADE's γ, β with others (:class:`condnorm.RAIN`).
        """
        if isinstance(segmap, Tensor) and (segmap.is_floating_point() or segmap.dim() != 3):
            actv = self.mlp_shared(resize_segmap(segmap, size))
            return self.mlp_gamma(actv), self.mlp_beta(actv)
        labels = (segmap if isinstance(segmap, SemanticMap) else SemanticMap(segmap)).resize(size)
        shared, act = self.mlp_shared[0], self.mlp_shared[1]
        onnx = exporting_onnx()
        folded = None if capturing_graph() and not onnx else fold_binary_extra(labels, shared.weight)
        windows = labels.windows
        if folded is None or windows is None or windows.windows.shape[1] != shared.weight[0, 0].numel():
            windows = None if folded is None else label_windows(folded[0], shared.kernel_size)
        if windows is None:  # compiled or traced, or extra channels that are not 0/1: static shapes
            actv = act(label_conv2d(labels, shared.weight, shared.bias))
            return self.mlp_gamma(actv), self.mlp_beta(actv)
        window_actv = act(window_conv(windows.windows, folded[1], shared.bias))  # (V, hidden)
        pixels = windows.pixel_window.numel()
        if windows.patches is None or (not onnx and len(windows.windows) + 1 > self.window_fraction * pixels):
            actv = paint_columns(window_actv.t().contiguous(), windows.pixel_window)
            return self.mlp_gamma(actv), self.mlp_beta(actv)
        return self._paint_patches(window_actv, windows)

    def _paint_patches(self, window_actv: Tensor, windows: LabelWindows) -> tuple[Tensor, Tensor]:
        """``mlp_gamma``/``mlp_beta`` once per distinct patch, painted back onto the pixels.

        A patch's output is ``Σ_tap W_tap · actv(window at tap)``: every (window, tap) product is
        one row of ``actv @ W`` and each patch sums its k² rows (an embedding bag).
        """
        weight = torch.cat([self.mlp_gamma.weight, self.mlp_beta.weight])  # (2C, hidden, k, k)
        taps = weight.shape[-2] * weight.shape[-1]
        # Row (window + 1)·k² + tap; window 0 is the zero padding around the map.
        products = F.pad(window_actv, (0, 0, 1, 0)) @ weight.flatten(2).permute(1, 2, 0).flatten(1)
        bags = windows.patches * taps + torch.arange(taps, device=window_actv.device)
        out = bag_sum(bags, products.view(-1, weight.shape[0]))
        bias = torch.cat([self.mlp_gamma.bias, self.mlp_beta.bias])
        gamma, beta = (out + bias.to(out.dtype)).t().chunk(2)
        return (paint_columns(gamma.contiguous(), windows.pixel_patch),
                paint_columns(beta.contiguous(), windows.pixel_patch))

    def forward(self, x: Tensor, segmap: Tensor | SemanticMap, **norm_kwargs: Any) -> Tensor:
        """Normalise ``x`` and modulate it with γ, β predicted from ``segmap``.

        ``norm_kwargs`` go to the normalizer unchanged (:func:`condnorm.norm.apply_norm`).
        """
        sizes = check_shape(x, ("N", "C", "H", "W"), "SPADE x", {"C": self.num_features})
        if isinstance(segmap, SemanticMap) or (segmap.dim() == 3 and not segmap.is_floating_point()):
            self._check_labels(segmap, sizes["N"])
        else:
            check_shape(segmap, ("N", "L", "H'", "W'"), "SPADE segmap",
                        {"N": sizes["N"], "L": self.label_nc})
            segmap = segmap.to(x.dtype)
        gamma, beta = self.gamma_beta(segmap, x.shape[-2:])
        return modulate(apply_norm(self.param_free_norm, x, norm_kwargs), gamma, beta)

    def _check_labels(self, segmap: Tensor | SemanticMap, batch: int) -> None:
        labels = segmap if isinstance(segmap, SemanticMap) else SemanticMap(segmap)
        sizes = check_shape(labels.ids, ("N", "H'", "W'"), "SPADE segmap ids", {"N": batch})
        if labels.extra is not None:
            check_shape(labels.extra, ("N", "E", "H'", "W'"), "SPADE segmap extra", sizes)
        check_ids(labels.ids, self.label_nc - labels.num_extra, "SPADE segmap ids")

    def extra_repr(self) -> str:
        return f"{self.num_features}, label_nc={self.label_nc}"


SpatiallyAdaptiveNorm2d = SPADE
