"""What gets exported: each network as a graph with fixed tensor inputs, and its :class:`GraphSpec`.

- **Layers**: every condnorm layer is exported as it is, ``layer(x, *conditions)``
  (:func:`layer_spec`); batch and spatial sizes are dynamic.
- **SPADE and CLADE generators** (:func:`spade_generator_spec`): ``(ids[, edges]) → image``, or
  ``(ids[, edges], z) → image`` for a VAE generator (the runtime draws ``z``, as the PyTorch path
  does). The label map goes in as class ids plus the 0/1 instance-edge channels, the form
  SPADE's fast path computes on (see :class:`condnorm.SPADE`), so onnxruntime skips the same
  FLOPs as eager PyTorch; soft label maps need the PyTorch model. The VAE
  image encoder is a separate graph (:func:`spade_encoder_spec`, ``image → (mu, logvar)``), so
  a deployment that samples ``z`` does not carry it. Only the batch is dynamic: the output
  size is fixed by the generator's latent map, ``sw = crop_size // 2**n``,
  ``sh = round(sw / aspect_ratio)``, output ``(sh·2**n, sw·2**n)`` (``n`` = 5, 6, 7 for
  normal/more/most); label maps are resized to it by the shared pre-processing. An OASIS-trained
  generator also takes its 3-D noise map ``(N, z_dim, H, W)``, drawn by the runtime.
- **RAIN (SEAN) generator** (:func:`rain_generator_spec`): ``(segmap, style_codes, noise_0, …,
  noise_k) → image``. Each noisy layer's noise map is an input, in the order the layers draw
  it, so the runtime draws them from a seeded ``torch.Generator`` exactly as the PyTorch
  generator does. The style encoder is a separate graph (:func:`rain_encoder_spec`,
  ``(style_image, segmap) → style_codes``). Batch dynamic, size fixed as for SPADE.
- **SDM denoiser** (:func:`sdm_denoiser_spec`): ``(x_t, t, mask) → ε`` (or v) with the dense mask
  ``(N, semantic_nc, H, W)``; the DDIM loop and classifier-free guidance stay in Python around the
  file (:meth:`~models.app.export.runtime.OnnxDenoiser.sampler`). Batch dynamic (guidance runs the
  conditional and zero-mask inputs as one batch of 2N), size fixed.
- **Style transfer** (:class:`StyleTransferGraph`): ``(content, style, alpha) → image``,
  images in [0, 1], any content and style size (H, W ≥ 16): the content is reflect-padded to a
  multiple of 8 and the output cropped back inside the graph, as in
  :meth:`StyleTransfer.transfer`. The output is the decoder's, not yet clamped: the shared
  post-processing (:func:`~models.adain.style_transfer.color_postprocess`) clamps it, after
  putting the content's chroma back in luminance mode.
  The split form takes precomputed style statistics: :class:`StyleCodeGraph` (``style →
  (mean, std)`` for AdaIN, ``style → code`` for AdaCoN) and :class:`StyleTransferFromCodeGraph`
  (``(content, *code, alpha) → image``), so one style's encoding is reused across contents.

Example inputs have a batch of 2: from a batch of 1, ``torch.export`` may specialise the batch
to 1 without an error (AdaCoN's per-sample kernels did), and the graph then fails on a larger
batch at run time.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from condnorm import SemanticMap
from condnorm.functional import calc_mean_std
from models.adain.modulation import AdaINModulation
from models.adain.style_transfer import StyleTransfer
from models.oasis import OASISGenerator
from models.sdm import DDIMSampler
from models.sean import SEANGenerator
from models.spade import ConvEncoder, SPADEGenerator

from .formats import GraphSpec
from .prepare import prepare_for_export

__all__ = [
    "LabelMapGeneratorGraph",
    "RainGeneratorGraph",
    "StyleCodeGraph",
    "StyleTransferFromCodeGraph",
    "StyleTransferGraph",
    "layer_spec",
    "rain_encoder_spec",
    "rain_generator_spec",
    "sdm_denoiser_spec",
    "spade_encoder_spec",
    "spade_generator_spec",
    "style_code_spec",
    "style_transfer_spec",
]

_MULTIPLE = 8  # the style-transfer encoder downsamples by 8


def _condition_dims(name: str, t: Tensor, x: Tensor) -> dict[int, str]:
    """Dynamic dims of one condition: its batch, and its spatial size (shared with x's when equal)."""
    dims = {0: "N"}
    spatial = range(2, t.dim()) if t.dim() == 4 else range(1, 3) if t.dim() == 3 and not \
        t.is_floating_point() else range(0)
    for d, axis in zip(spatial, ("H", "W")):
        same = x.dim() == 4 and t.shape[d] == x.shape[2 if axis == "H" else 3]
        dims[d] = axis if same else f"{name}_{axis}"
    return dims


def layer_spec(layer: nn.Module, *inputs: Tensor) -> GraphSpec:
    """The export spec of a condnorm layer called as ``layer(x, *conditions)``.

    Inputs are named after ``forward``'s parameters. The batch is dynamic everywhere; so are
    the spatial sizes of ``x`` and of every spatial condition (segmaps ``(N, L, H', W')``, id
    maps ``(N, H', W')``, style maps, noise). A condition whose example size equals ``x``'s
    shares its names (``H``, ``W``); otherwise it gets its own (``segmap_H``).

    Give example segmaps at a size different from ``x``'s: the layers skip the (no-op) resize
    when the sizes match, and the tracing exporters freeze that branch at the example.

    Token layers take ``x`` as ``(N, T, C)``: then ``T`` is dynamic too (in ``x`` and the output),
    unless the layer has a fixed token grid (a ``grid_size`` attribute, e.g. :class:`condnorm.TokenAdaLN`).

    Args:
        layer: the layer, prepared (:func:`prepare_for_export`) by this function.
        *inputs: example ``x`` and conditions.

    Example:
        >>> import condnorm
        >>> spec = layer_spec(condnorm.SPADE(8, label_nc=3, hidden=8), torch.randn(2, 8, 4, 4),
        ...                   torch.rand(2, 3, 8, 8))
        >>> spec.input_names, dict(spec.dynamic["segmap"])
        (('x', 'segmap'), {0: 'N', 2: 'segmap_H', 3: 'segmap_W'})
    """
    params = [p for p in inspect.signature(layer.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(inputs) > len(params):
        raise ValueError(f"layer_spec: {type(layer).__name__}.forward takes {len(params)} tensor(s), "
                         f"got {len(inputs)}")
    names = tuple(p.name for p in params[:len(inputs)])
    x = inputs[0]
    if x.dim() == 3:  # tokens (N, T, C)
        x_dims = {0: "N"} if getattr(layer, "grid_size", None) is not None else {0: "N", 1: "T"}
    else:
        x_dims = {0: "N", 2: "H", 3: "W"}
    dynamic = {names[0]: x_dims}
    dynamic.update({n: _condition_dims(n, t, x) for n, t in zip(names[1:], inputs[1:])})
    return GraphSpec(prepare_for_export(layer), tuple(inputs), names, ("out",), dynamic,
                     {"out": dict(x_dims)}, {"task": "layer", "layer": type(layer).__name__})


def _random_segmap(n: int, channels: int, size: tuple[int, int], seed: int = 0) -> Tensor:
    ids = torch.randint(channels, (n, *size), generator=torch.Generator().manual_seed(seed))
    return F.one_hot(ids, channels).permute(0, 3, 1, 2).float()


class LabelMapGeneratorGraph(nn.Module):
    """``(ids[, edges][, z | noise]) → image``: a SPADE/CLADE generator fed class ids, not the one-hot map.

    The ids are what the generator's fast path computes on (:class:`condnorm.SemanticMap`), so the
    graph skips the one-hot map and the FLOPs that SPADE skips in eager PyTorch. ``edges``
    ``(N, E, H, W)`` are the 0/1 channels after the classes (instance boundaries), present when
    ``num_extra > 0``. An OASIS-trained generator (:class:`~models.oasis.OASISGenerator`) takes
    its 3-D noise ``(N, z_dim, H, W)`` last and computes on the dense map (the noise channels
    join it).

    Args:
        generator: the prepared generator.
        num_extra: E, dense 0/1 channels after the one-hot ones.
    """

    def __init__(self, generator: SPADEGenerator | OASISGenerator, num_extra: int = 0) -> None:
        super().__init__()
        self.generator = generator
        self.num_extra = num_extra

    def forward(self, ids: Tensor, *rest: Tensor) -> Tensor:
        """``rest`` is ``edges`` when ``num_extra > 0``, then ``z`` for a VAE generator or ``noise`` for OASIS."""
        labels = SemanticMap(ids, rest[0] if self.num_extra else None)
        if isinstance(self.generator, OASISGenerator):  # the noise channels join the dense map
            semantic_nc = self.generator.net.semantic_nc - self.generator.z_dim
            return self.generator(labels.to_dense(semantic_nc), noise=rest[-1])
        z = rest[-1] if self.generator.use_vae else None
        return self.generator(labels if self.num_extra else ids, z)


def spade_generator_spec(generator: SPADEGenerator | OASISGenerator, *, num_extra: int = 0, batch: int = 2,
                         metadata: Mapping[str, Any] | None = None) -> GraphSpec:
    """Export spec of a SPADE/CLADE generator: ``(ids[, edges][, z | noise]) → image``.

    The graph takes the label map as class ids ``(N, H, W)`` in ``[0, semantic_nc - E)``
    (:class:`LabelMapGeneratorGraph`), then the ``E`` 0/1 edge channels ``(N, E, H, W)``, then
    ``z`` ``(N, z_dim)`` for a VAE generator, or the 3-D noise ``(N, z_dim, H, W)`` for an
    OASIS-trained one (the metadata's ``noise`` entry gives its ``z_dim`` and ``mode``; the
    runtime draws it as :meth:`~models.oasis.OASISGenerator.draw` does).
    :class:`~models.app.export.runtime.OnnxGenerator` splits the shared pre-processing's one-hot
    map into these.

    Args:
        generator: the generator (or a module holding one; the EMA generator is preferred),
            prepared by this function.
        num_extra: E, channels after the one-hot ones (1 with instance edges:
            ``LabelLayout.use_instance``).
        batch: example batch size (the batch is dynamic).
        metadata: extra JSON-able entries for the file (the label layout, from the caller).

    Example:
        >>> spec = spade_generator_spec(SPADEGenerator(5, ngf=2, crop_size=32, norm="batch"))
        >>> spec.input_names, spec.metadata["output_size"], tuple(spec.inputs[0].shape)
        (('ids',), [32, 32], (2, 32, 32))
        >>> oasis = OASISGenerator(SPADEGenerator(5 + 4, ngf=2, crop_size=32, norm="batch"), z_dim=4)
        >>> spec = spade_generator_spec(oasis)
        >>> spec.input_names, tuple(spec.inputs[-1].shape), spec.metadata["noise"]
        (('ids', 'noise'), (2, 4, 32, 32), {'z_dim': 4, 'mode': 'pixel'})
    """
    g = prepare_for_export(generator)
    oasis = g if isinstance(g, OASISGenerator) else None
    net = oasis.net if oasis is not None else g
    semantic_nc = net.semantic_nc - (oasis.z_dim if oasis is not None else 0)
    gen = torch.Generator().manual_seed(0)
    classes = semantic_nc - num_extra
    inputs: tuple[Tensor, ...] = (torch.randint(classes, (batch, *g.output_size), generator=gen),)
    names: tuple[str, ...] = ("ids",)
    if num_extra:
        inputs += (torch.randint(2, (batch, num_extra, *g.output_size), generator=gen).float(),)
        names += ("edges",)
    if net.use_vae:
        inputs += (torch.randn(batch, net.z_dim, generator=gen),)
        names += ("z",)
    info = {"task": "spade", "output_size": list(g.output_size), "semantic_nc": semantic_nc,
            "num_extra": num_extra, "use_vae": net.use_vae, "z_dim": net.z_dim, **(metadata or {})}
    if oasis is not None:
        inputs += (torch.randn(batch, oasis.z_dim, *g.output_size, generator=gen),)
        names += ("noise",)
        info["noise"] = {"z_dim": oasis.z_dim, "mode": oasis.noise_mode}
    return GraphSpec(LabelMapGeneratorGraph(g, num_extra), inputs, names, ("image",),
                     {n: {0: "N"} for n in names}, {"image": {0: "N"}}, info)


def spade_encoder_spec(encoder: ConvEncoder, *, batch: int = 2,
                       metadata: Mapping[str, Any] | None = None) -> GraphSpec:
    """Export spec of SPADE's VAE image encoder: ``image (N, 3, H, W) in [-1, 1] → (mu, logvar)``.

    Batch and image size are dynamic (the encoder resizes to its ``input_size``).

    Example:
        >>> spec = spade_encoder_spec(ConvEncoder(ngf=2, z_dim=4, input_size=16))
        >>> spec.output_names
        ('mu', 'logvar')
    """
    enc = prepare_for_export(encoder)
    side = enc.input_size + _MULTIPLE  # not the input size, so the resize is traced
    image = torch.rand(batch, 3, side, side + 4, generator=torch.Generator().manual_seed(2)) * 2 - 1
    return GraphSpec(enc, (image,), ("image",), ("mu", "logvar"), {"image": {0: "N", 2: "H", 3: "W"}},
                     {"mu": {0: "N"}, "logvar": {0: "N"}},
                     {"task": "spade-encoder", "z_dim": enc.z_dim, **(metadata or {})})


class RainGeneratorGraph(nn.Module):
    """``(segmap, style_codes, *noise) → image``: a SEAN generator with its noise maps as inputs.

    ``noise[i]`` ``(N, 1, h_i, w_i)`` is the draw of the ``i``-th noisy layer
    (:meth:`~models.sean.SEANGenerator.noise_shapes` order), passed to the generator as its
    explicit noise, so feeding the draws of a seeded generator in this order reproduces
    ``generator(segmap, style_codes=…, noise=torch.Generator().manual_seed(s))``.
    """

    def __init__(self, generator: SEANGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, segmap: Tensor, style_codes: Tensor, *noise: Tensor) -> Tensor:
        return self.generator(segmap, style_codes=style_codes, noise=list(noise))


class _RainEncoder(nn.Module):
    def __init__(self, generator: SEANGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, style_image: Tensor, segmap: Tensor) -> Tensor:
        return self.generator.encode(style_image, segmap)


def rain_generator_spec(generator: SEANGenerator, *, batch: int = 2,
                        metadata: Mapping[str, Any] | None = None) -> GraphSpec:
    """Export spec of a RAIN (SEAN) generator: ``(segmap, style_codes, noise_0, …) → image``.

    The metadata lists ``noise_shapes`` (``[h, w]`` per noise input, in order) for the runtime.

    Example:
        >>> g = SEANGenerator(3, ngf=2, style_dim=4, crop_size=32, norm="batch", hidden=4, encoder_ngf=2)
        >>> spec = rain_generator_spec(g)
        >>> spec.input_names[:3], len(spec.input_names) == 2 + len(spec.metadata["noise_shapes"])
        (('segmap', 'style_codes', 'noise_0'), True)
    """
    g = prepare_for_export(generator)
    seg = _random_segmap(batch, g.semantic_nc, g.output_size)
    codes = torch.randn(batch, g.label_nc, g.style_dim, generator=torch.Generator().manual_seed(1))
    shapes = g.noise_shapes()
    noise_gen = torch.Generator().manual_seed(2)
    noise = tuple(torch.randn(batch, 1, h, w, generator=noise_gen) for h, w in shapes)
    names = ("segmap", "style_codes", *(f"noise_{i}" for i in range(len(shapes))))
    info = {"task": "rain", "output_size": list(g.output_size), "semantic_nc": g.semantic_nc,
            "style_dim": g.style_dim, "noise_shapes": [[h, w] for h, w in shapes], **(metadata or {})}
    return GraphSpec(RainGeneratorGraph(g), (seg, codes, *noise), names, ("image",),
                     {n: {0: "N"} for n in names}, {"image": {0: "N"}}, info)


def rain_encoder_spec(generator: SEANGenerator, *, batch: int = 2,
                      metadata: Mapping[str, Any] | None = None) -> GraphSpec:
    """Export spec of a SEAN generator's style encoder: ``(style_image, segmap) → style_codes (N, L, D)``.

    The image is in [-1, 1] at the generator's output size; the batch is dynamic.
    """
    g = prepare_for_export(generator)
    seg = _random_segmap(batch, g.semantic_nc, g.output_size)
    image = torch.rand(batch, 3, *g.output_size, generator=torch.Generator().manual_seed(3)) * 2 - 1
    return GraphSpec(_RainEncoder(g), (image, seg), ("style_image", "segmap"), ("style_codes",),
                     {"style_image": {0: "N"}, "segmap": {0: "N"}}, {"style_codes": {0: "N"}},
                     {"task": "rain-encoder", **(metadata or {})})


class StyleTransferGraph(nn.Module):
    """``(content, style, alpha) → image``: one style per content, both in [0, 1], any size ≥ 16.

    Clamped to [0, 1], the output equals ``net.transfer(content, style, alpha=alpha)`` for a
    style batch equal to the content's (expand a single style first).

    Example:
        >>> graph = StyleTransferGraph(StyleTransfer().eval())
        >>> graph(torch.rand(1, 3, 20, 28), torch.rand(1, 3, 16, 16), torch.tensor(0.5)).shape
        torch.Size([1, 3, 20, 28])
    """

    def __init__(self, net: StyleTransfer) -> None:
        super().__init__()
        self.net = net

    def forward(self, content: Tensor, style: Tensor, alpha: Tensor) -> Tensor:
        style_feat = self.net.encode(style)
        return self.net.stylise(content, lambda feat: self.net.modulation(feat, style_feat), alpha)


class StyleCodeGraph(nn.Module):
    """``style → code``: AdaIN's relu4_1 ``(mean, std)``, each ``(N, 512, 1, 1)``; AdaCoN's ``(N, D)`` code.

    Example:
        >>> mean, std = StyleCodeGraph(StyleTransfer().eval())(torch.rand(1, 3, 16, 16))
        >>> mean.shape
        torch.Size([1, 512, 1, 1])
    """

    def __init__(self, net: StyleTransfer) -> None:
        super().__init__()
        self.net = net

    def forward(self, style: Tensor) -> tuple[Tensor, ...]:
        feat = self.net.encode(style)
        m = self.net.modulation
        if isinstance(m, AdaINModulation):
            return calc_mean_std(feat, m.eps, m.unbiased)
        return (m.style_encoder(feat),)


class StyleTransferFromCodeGraph(nn.Module):
    """``(content, *code, alpha) → image`` with the code of :class:`StyleCodeGraph`.

    Interpolating codes (for AdaIN, the weighted means and deviations) mixes styles.
    """

    def __init__(self, net: StyleTransfer) -> None:
        super().__init__()
        self.net = net

    def forward(self, content: Tensor, *code_and_alpha: Tensor) -> Tensor:
        *code, alpha = code_and_alpha
        m = self.net.modulation
        if isinstance(m, AdaINModulation):
            return self.net.stylise(content, lambda feat: m(feat, tuple(code)), alpha)
        return self.net.stylise(content, lambda feat: m.adacon(feat, code[0]), alpha)


def _style_examples(batch: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.rand(batch, 3, 44, 60, generator=g), torch.rand(batch, 3, 36, 28, generator=g)


def style_transfer_spec(net: StyleTransfer, *, batch: int = 2,
                        metadata: Mapping[str, Any] | None = None) -> GraphSpec:
    """Export spec of :class:`StyleTransferGraph`: batch, content size and style size are dynamic.

    Args:
        net: the network (or a module holding it as ``net``), prepared by this function.
        batch: example batch size.
        metadata: extra JSON-able entries for the file.
    """
    net = prepare_for_export(net)
    content, style = _style_examples(batch)
    spatial = {0: "N", 2: "H", 3: "W"}
    return GraphSpec(StyleTransferGraph(net), (content, style, torch.tensor(0.75)),
                     ("content", "style", "alpha"), ("image",),
                     {"content": spatial, "style": {0: "N", 2: "style_H", 3: "style_W"}},
                     {"image": spatial}, {"task": "adain", **(metadata or {})})


def style_code_spec(net: StyleTransfer, *, batch: int = 2) -> tuple[GraphSpec, GraphSpec]:
    """Export specs of the split form: (:class:`StyleCodeGraph`, :class:`StyleTransferFromCodeGraph`)."""
    net = prepare_for_export(net)
    content, style = _style_examples(batch)
    coder = StyleCodeGraph(net)
    with torch.no_grad():
        code = coder(style)
    code_names = ("style_mean", "style_std") if len(code) == 2 else ("style_code",)
    spatial = {0: "N", 2: "H", 3: "W"}
    code_spec = GraphSpec(coder, (style,), ("style",), code_names, {"style": {0: "N", 2: "H", 3: "W"}},
                          {n: {0: "N"} for n in code_names}, {"task": "adain-style-code"})
    transfer_spec = GraphSpec(
        StyleTransferFromCodeGraph(net), (content, *code, torch.tensor(0.75)),
        ("content", *code_names, "alpha"), ("image",),
        {"content": spatial, **{n: {0: "N"} for n in code_names}}, {"image": spatial},
        {"task": "adain-from-code"})
    return code_spec, transfer_spec


def sdm_denoiser_spec(sampler: DDIMSampler, *, batch: int = 2, metadata: Mapping[str, Any] | None = None) -> GraphSpec:
    """Export spec of an SDM denoiser: ``(x_t (N, 3, H, W), t (N,), mask (N, L, H, W)) → ε`` (or v).

    The file records what the Python DDIM loop needs: the noise schedule, the prediction type and
    the sampler's default ``steps`` and ``guidance``.

    Args:
        sampler: the checkpoint's :class:`~models.sdm.DDIMSampler` (its denoiser is prepared, copied).
        batch: example batch size (the batch is dynamic).
        metadata: extra JSON-able entries for the file (the label layout, from the caller).

    Example:
        >>> from models.sdm import NoiseSchedule, SDMUNet
        >>> s = DDIMSampler(SDMUNet.from_size("tiny", label_nc=4), NoiseSchedule("linear", 100), (16, 16))
        >>> spec = sdm_denoiser_spec(s)
        >>> spec.input_names, spec.metadata["output_size"], tuple(spec.inputs[2].shape)
        (('x_t', 't', 'mask'), [16, 16], (2, 4, 16, 16))
    """
    net = prepare_for_export(sampler.denoiser)
    gen = torch.Generator().manual_seed(0)
    size = sampler.output_size
    inputs = (torch.randn(batch, 3, *size, generator=gen),
              torch.randint(0, sampler.schedule.timesteps, (batch,), generator=gen).float(),
              torch.rand(batch, net.label_nc, *size, generator=gen))
    names = ("x_t", "t", "mask")
    info = {"task": "sdm", "output_size": list(size), "semantic_nc": net.label_nc,
            "schedule": sampler.schedule.kind, "timesteps": sampler.schedule.timesteps,
            "prediction": sampler.prediction, "steps": sampler.steps, "guidance": sampler.guidance,
            **(metadata or {})}
    return GraphSpec(net, inputs, names, ("output",), {n: {0: "N"} for n in names}, {"output": {0: "N"}}, info)
