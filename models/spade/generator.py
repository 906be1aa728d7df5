"""The SPADE generator (Park et al., CVPR 2019) with the official parameter names."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import condnorm
from condnorm._check import check_ids, check_shape
from condnorm.functional import resize_segmap
from condnorm.graph_mode import capturing_graph, exporting_onnx
from condnorm.norm import NormSpec
from condnorm.semantic_map import SemanticMap, label_conv2d

from .blocks import ModulatedResBlock, xavier_init_

__all__ = ["NUM_UPSAMPLINGS", "ModulatedGenerator", "SPADEGenerator"]

NUM_UPSAMPLINGS = {"normal": 5, "more": 6, "most": 7}


class ModulatedGenerator(nn.Module):
    """The backbone the SPADE-family generators share: ``fc``, the modulated residual blocks, ``conv_img``.

    It builds the official layer stack (see :class:`SPADEGenerator`) with the block and ``fc``
    factories it is given, and runs it from a latent map (:meth:`synthesize`); each generator
    adds its own inputs and ``forward`` (:class:`SPADEGenerator`: a segmap and ``z``;
    :class:`models.sean.SEANGenerator`: a segmap and region style codes).

    Args:
        semantic_nc: channels of the semantic map.
        ngf: base width.
        crop_size: output width before rounding to a multiple of ``2**n``.
        aspect_ratio: width / height.
        num_upsampling_layers: ``"normal"`` (5), ``"more"`` (6) or ``"most"`` (7).
        block: ``block(name, fin, fout)`` builds each residual block.
        fc: ``fc(latent_channels, sh, sw)`` builds the first layer.
        device: device of ``conv_img`` (the factories place their own modules).
        dtype: dtype of ``conv_img``.
    """

    def __init__(
        self,
        semantic_nc: int,
        *,
        ngf: int,
        crop_size: int,
        aspect_ratio: float,
        num_upsampling_layers: str,
        block: Callable[[str, int, int], nn.Module],
        fc: Callable[[int, int, int], nn.Module],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_upsampling_layers not in NUM_UPSAMPLINGS:
            raise ValueError(f"{type(self).__name__}: num_upsampling_layers must be one of "
                             f"{list(NUM_UPSAMPLINGS)}, got {num_upsampling_layers!r}")
        n = NUM_UPSAMPLINGS[num_upsampling_layers]
        sw = crop_size // 2**n
        sh = round(sw / aspect_ratio)
        if sw < 1 or sh < 1:
            raise ValueError(f"{type(self).__name__}: crop_size={crop_size}, aspect_ratio={aspect_ratio} give a "
                             f"{sh}x{sw} latent map with {n} upsamplings ('{num_upsampling_layers}'); "
                             f"use crop_size >= {2**n} (and a smaller aspect_ratio)")
        self.semantic_nc = semantic_nc
        self.num_upsamplings, self.latent_size = n, (sh, sw)
        self.output_size = (sh * 2**n, sw * 2**n)
        self.latent_channels = 16 * ngf
        nf = ngf
        self.fc = fc(self.latent_channels, sh, sw)
        self.head_0 = block("head_0", 16 * nf, 16 * nf)
        self.G_middle_0 = block("G_middle_0", 16 * nf, 16 * nf)
        self.G_middle_1 = block("G_middle_1", 16 * nf, 16 * nf)
        self.up_0 = block("up_0", 16 * nf, 8 * nf)
        self.up_1 = block("up_1", 8 * nf, 4 * nf)
        self.up_2 = block("up_2", 4 * nf, 2 * nf)
        self.up_3 = block("up_3", 2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == "most":
            self.up_4 = block("up_4", nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1, device=device, dtype=dtype)
        # (block name, upsample before it); fixed here so forward has no branches on options.
        self._schedule: tuple[tuple[str, bool], ...] = (
            ("head_0", False), ("G_middle_0", True), ("G_middle_1", n >= 6), ("up_0", True),
            ("up_1", True), ("up_2", True), ("up_3", True),
        ) + ((("up_4", True),) if n == 7 else ())
        self.reset_parameters()

    def blocks(self) -> list[ModulatedResBlock]:
        """The residual blocks in forward order."""
        return [getattr(self, name) for name, _ in self._schedule]

    def reset_parameters(self) -> None:
        """Official xavier-normal(0.02) init of the backbone; the norms keep their own init."""
        for module in [self.fc, self.conv_img] + [c for b in self.blocks() for c in b.convs()]:
            xavier_init_(module)

    def segmap_pyramid(self, segmap: Tensor | SemanticMap) -> list[Tensor | SemanticMap]:
        """The segmap at every resolution the network runs at, from ``sh × sw`` to the output size.

        Level ``k`` is the full-size map (dense, ids or :class:`condnorm.SemanticMap`)
        nearest-resized to ``(sh·2**k, sw·2**k)``, exactly what SPADE's per-layer resize would
        compute. With SPADE norms, each level of a :class:`condnorm.SemanticMap` carries its
        label windows (:meth:`~condnorm.SemanticMap.with_windows`), found once for the level's
        norms.
        """
        sh, sw = self.latent_size
        sizes = [(sh << k, sw << k) for k in range(self.num_upsamplings + 1)]
        if isinstance(segmap, SemanticMap):
            kernels = {m.mlp_shared[0].kernel_size for m in self.norms() if isinstance(m, condnorm.SPADE)}
            if len(kernels) != 1 or (capturing_graph() and not exporting_onnx()):
                return [segmap.resize(size) for size in sizes]
            # The norms of a level share its label windows: found once here, not once per norm.
            (kernel,) = kernels
            return [segmap.resize(size).with_windows(kernel) for size in sizes]
        return [resize_segmap(segmap, size) for size in sizes]

    def norms(self) -> list[nn.Module]:
        """The conditional norms of all blocks."""
        return [m for b in self.blocks() for m in b.norms()]

    def check_size(self, height: int, width: int, name: str) -> None:
        """Raise if a segmap's spatial size is not the generator's :attr:`output_size`."""
        if (height, width) != self.output_size:
            raise ValueError(
                f"{name}: expected spatial size {self.output_size} (latent {self.latent_size} × "
                f"2**{self.num_upsamplings}), got {(height, width)}; resize the segmap (nearest) or build "
                "the generator with a matching crop_size/aspect_ratio")

    def synthesize(self, x: Tensor, pyramid: list, *cond: object) -> Tensor:
        """Run the blocks from the latent map ``x`` to the image.

        Each block gets the segmap level of its resolution and then ``cond`` (e.g. SEAN's style
        codes and noise); the output is ``tanh(conv_img(LeakyReLU(x)))``.
        """
        level = 0
        for name, upsample in self._schedule:
            if upsample:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
                level += 1
            x = getattr(self, name)(x, pyramid[level], *cond)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class SPADEGenerator(ModulatedGenerator):
    r"""Mask-to-image generator: a stack of SPADE residual blocks upsampled from a small latent map.

    Layers, in order (``nf = ngf``; ``up`` is nearest ×2)::

        fc → head_0(16nf) → up → G_middle_0(16nf) → [up if more/most] → G_middle_1(16nf)
           → up → up_0(8nf) → up → up_1(4nf) → up → up_2(2nf) → up → up_3(nf)
           → [up → up_4(nf/2) if most] → LeakyReLU(0.2) → conv_img(3×3 → 3) → tanh

    The latent map is ``sh × sw`` with ``sw = crop_size // 2**n`` and
    ``sh = round(sw / aspect_ratio)`` for ``n`` = 5, 6, 7 upsamplings (normal, more, most), so
    the segmap and the output are ``(sh·2**n, sw·2**n)``. Without ``use_vae`` ``fc`` is a 3×3
    conv on the segmap downsampled to ``sh × sw``; with it, ``fc`` is a linear layer from a
    latent ``z`` of size ``z_dim`` (sampled from N(0, I) when not given).

    The segmap is resized once per resolution (nearest, from the full-size map), and each block
    gets the level that matches it, so SPADE's own resize is a no-op; the result equals the
    official per-layer resize exactly.

    Hard label maps run on class ids (exact, several times fewer FLOPs in the SPADE layers, see
    :class:`condnorm.SPADE`): pass integer ids ``(N, H, W)`` or a :class:`condnorm.SemanticMap`
    (ids plus dense channels such as instance edges), or a dense map that is one-hot, optionally
    followed by one dense channel, which eager ``forward`` recognises and converts
    (:meth:`condnorm.SemanticMap.from_dense`; skipped while tracing or compiling, or when the map
    needs a gradient). Ids reach the norms only when they all take them (SPADE, CLADE; SPADE
    alone for extra channels); other norms get the dense map.

    Parameter names match the official ``SPADEGenerator`` (``fc``, ``head_0``, ``G_middle_0``,
    ``G_middle_1``, ``up_0``…``up_4``, ``conv_img``; blocks and SPADE layers as in
    :class:`ModulatedResBlock` and :class:`condnorm.SPADE`), so official checkpoints load with
    ``strict=True``. Initialisation: the backbone (``fc``, the blocks' convs, ``conv_img``) gets
    the official xavier-normal(gain 0.02) with zero biases; the SPADE layers keep condnorm's
    initialisation (zero γ/β predictors: each block starts as identity-after-normalisation),
    where the official code applies xavier(0.02) to them too. Init only matters when training
    from scratch; loading weights overwrites all of it.

    Args:
        semantic_nc: channels of the segmap (classes + dontcare + instance edges).
        ngf: base width ``nf``.
        z_dim: latent size (``use_vae`` only).
        crop_size: output width before rounding to a multiple of ``2**n``.
        aspect_ratio: width / height.
        num_upsampling_layers: ``"normal"`` (5), ``"more"`` (6) or ``"most"`` (7).
        use_vae: start from a latent vector instead of the downsampled segmap.
        norm: parameter-free normalizer inside SPADE (see :func:`condnorm.make_norm`).
        spectral: spectral normalisation on the blocks' convs.
        kernel_size: kernel of the SPADE convs.
        norm_layer: overrides the conditional norm: ``norm_layer(C)`` must return a module called
            as ``norm(x, segmap)`` (CLADE: :func:`models.spade.clade.clade_generator`); default
            ``partial(condnorm.SPADE, label_nc=semantic_nc, norm=norm, kernel_size=kernel_size)``.
            Generators with other conditions (SEAN's style codes) build their own
            :class:`ModulatedGenerator`.
        device: parameter device.
        dtype: parameter dtype.

    Shape:
        - segmap: ``(N, semantic_nc, sh·2**n, sw·2**n)``; or ids ``(N, sh·2**n, sw·2**n)`` in
          ``[0, semantic_nc)``; or a :class:`condnorm.SemanticMap` of ids in ``[0, semantic_nc - E)``
          and ``E`` extra channels
        - z: ``(N, z_dim)`` (``use_vae`` only)
        - output: ``(N, 3, sh·2**n, sw·2**n)`` in ``[-1, 1]``

    Example:
        >>> g = SPADEGenerator(6, ngf=4, crop_size=32, norm="batch")
        >>> g.output_size
        (32, 32)
        >>> g(torch.rand(2, 6, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
        >>> g(torch.randint(6, (2, 32, 32))).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        semantic_nc: int,
        *,
        ngf: int = 64,
        z_dim: int = 256,
        crop_size: int = 256,
        aspect_ratio: float = 1.0,
        num_upsampling_layers: str = "normal",
        use_vae: bool = False,
        norm: NormSpec = "syncbatch",
        spectral: bool = True,
        kernel_size: int = 3,
        norm_layer: Callable[[int], nn.Module] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        dd = {"device": device, "dtype": dtype}
        if norm_layer is None:
            norm_layer = functools.partial(condnorm.SPADE, label_nc=semantic_nc, norm=norm,
                                           kernel_size=kernel_size, **dd)

        def block(name: str, fin: int, fout: int) -> nn.Module:
            return ModulatedResBlock(fin, fout, norm_layer, spectral=spectral, **dd)

        def fc(channels: int, sh: int, sw: int) -> nn.Module:
            if use_vae:
                return nn.Linear(z_dim, channels * sh * sw, **dd)
            return nn.Conv2d(semantic_nc, channels, 3, padding=1, **dd)

        super().__init__(semantic_nc, ngf=ngf, crop_size=crop_size, aspect_ratio=aspect_ratio,
                         num_upsampling_layers=num_upsampling_layers, block=block, fc=fc, **dd)
        self.z_dim, self.use_vae = z_dim, use_vae

    def _check_inputs(self, segmap: Tensor | SemanticMap, z: Tensor | None) -> int:
        """Check the inputs; return the batch size."""
        name = "SPADEGenerator segmap"
        if isinstance(segmap, SemanticMap) or (segmap.dim() == 3 and not segmap.is_floating_point()):
            labels = segmap if isinstance(segmap, SemanticMap) else SemanticMap(segmap)
            sizes = check_shape(labels.ids, ("N", "H", "W"), name + " ids")
            if labels.extra is not None:
                check_shape(labels.extra, ("N", "E", "H", "W"), name + " extra", sizes)
            check_ids(labels.ids, self.semantic_nc - labels.num_extra, name + " ids")
        else:
            sizes = check_shape(segmap, ("N", "L", "H", "W"), name, {"L": self.semantic_nc})
        self.check_size(sizes["H"], sizes["W"], name)
        if z is not None:
            if not self.use_vae:
                raise ValueError("SPADEGenerator: z is only used with use_vae=True")
            check_shape(z, ("N", "Z"), "SPADEGenerator z", {"N": sizes["N"], "Z": self.z_dim})
        return sizes["N"]

    def condition(self, segmap: Tensor | SemanticMap) -> Tensor | SemanticMap:
        """The form of ``segmap`` the norms get: ids when they all take them, else the dense map."""
        dtype = self.conv_img.weight.dtype
        norms = self.norms()
        take_ids = all(isinstance(m, (condnorm.SPADE, condnorm.CLADE)) for m in norms)
        if isinstance(segmap, Tensor) and segmap.is_floating_point():
            found = None
            if take_ids and not capturing_graph() and not (segmap.requires_grad and torch.is_grad_enabled()):
                found = SemanticMap.from_dense(segmap)
            if found is None:
                return segmap.to(dtype)
            segmap = found
        labels = segmap if isinstance(segmap, SemanticMap) else SemanticMap(segmap)
        if all(isinstance(m, condnorm.SPADE) for m in norms):
            return SemanticMap(labels.ids, None if labels.extra is None else labels.extra.to(dtype))
        if labels.extra is None and take_ids:
            return labels.ids
        return labels.to_dense(self.semantic_nc, dtype)

    def forward(self, segmap: Tensor | SemanticMap, z: Tensor | None = None, *,
                generator: torch.Generator | None = None) -> Tensor:
        """Synthesise an image from ``segmap`` (and ``z`` with ``use_vae``).

        Args:
            segmap: one-hot (or soft) semantic map, class ids or a :class:`condnorm.SemanticMap`,
                see Shape.
            z: latent ``(N, z_dim)``; with ``use_vae`` and ``z=None`` it is drawn from N(0, I).
            generator: random generator used to draw ``z``.

        Returns:
            The image ``(N, 3, H, W)`` in ``[-1, 1]``.
        """
        batch = self._check_inputs(segmap, z)
        pyramid = self.segmap_pyramid(self.condition(segmap))
        sh, sw = self.latent_size
        if self.use_vae:
            if z is None:
                w = self.conv_img.weight
                z = torch.randn(batch, self.z_dim, generator=generator, device=w.device, dtype=w.dtype)
            x = self.fc(z).unflatten(1, (self.latent_channels, sh, sw))  # C stays known to ONNX tracing
        elif isinstance(pyramid[0], Tensor) and pyramid[0].is_floating_point():
            x = self.fc(pyramid[0])
        else:
            x = label_conv2d(pyramid[0], self.fc.weight, self.fc.bias)
        return self.synthesize(x, pyramid)
