"""Tiny, well-conditioned networks for the export tests and ``benchmarks/export_parity.py``.

Parity is measured in float32 on both sides, so a network whose activations grow through the
layers shows the two backends' independent rounding amplified. The generators here get
fan-in-scaled random weights (far from the identity-at-init state, γ and β non-zero) and
exact batch-norm statistics for the example input (:func:`condnorm.recalibrate`), like a
trained network, so a difference above 1e-4 points at the export and not at the test net.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

import condnorm
from models.adain import StyleTransfer
from models.app.export.formats import GraphSpec
from models.app.export.graphs import (
    LabelMapGeneratorGraph,
    layer_spec,
    rain_encoder_spec,
    rain_generator_spec,
    spade_encoder_spec,
    spade_generator_spec,
    style_code_spec,
    style_transfer_spec,
)
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.mask_to_image import MaskToImageModule
from models.oasis import OASISGenerator
from models.sean import SEANGenerator
from models.spade import ConvEncoder, SPADEGenerator
from models.spade.clade import clade_generator
from tests.condnorm.layer_cases import LayerCase

FORMATS = [("onnx", True), ("onnx", False), ("torchscript", True), ("export", True)]
"""(format, dynamo) pairs for ``models.app.export.verify.parity``: both ONNX exporters, TorchScript, torch.export."""
FORMAT_IDS = ["onnx-dynamo", "onnx-tracing", "torchscript", "export"]


def perturbed_(module: nn.Module, gain: float = 0.3, seed: int = 0) -> nn.Module:
    """Random weights ``N(0, gain² / fan_in)`` (vectors ``N(0, 0.1²)``), in place.

    Spectral norm's ``u, v`` are then power-iterated to convergence, as after training, so σ
    is the weight's true spectral norm (a fresh ``u`` can underestimate it many times over).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            std = gain / p[0].numel() ** 0.5 if p.dim() > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * std)
        for m in module.modules():
            for u in [b for name, b in m.named_buffers(recurse=False) if name.endswith("_u")]:
                u.copy_(torch.nn.functional.normalize(torch.randn(u.shape, generator=g), dim=0))
            for hook in m._forward_pre_hooks.values():
                if isinstance(hook, SpectralNorm):
                    for _ in range(50):
                        hook.compute_weight(m, do_power_iteration=True)
    return module


def _generator_spec(generator: SPADEGenerator | OASISGenerator, num_extra: int = 0) -> GraphSpec:
    perturbed_(generator)
    graph = LabelMapGeneratorGraph(generator, num_extra)
    condnorm.recalibrate(generator, [spade_generator_spec(generator, num_extra=num_extra).inputs],
                         forward=lambda m, batch: graph(*batch))
    return spade_generator_spec(generator, num_extra=num_extra)


def rain_generator(seed: int = 0) -> SEANGenerator:
    """A tiny SEAN generator with random weights, noise scales and trained-like statistics."""
    g = perturbed_(SEANGenerator(SEMANTIC_NC, ngf=4, style_dim=8, crop_size=64, aspect_ratio=2.0, hidden=8,
                                 encoder_ngf=4), seed=seed)
    spec = rain_generator_spec(g)
    condnorm.recalibrate(g, [spec.inputs[:2]], forward=lambda m, b: m(b[0], style_codes=b[1],
                                                                       noise=torch.Generator().manual_seed(0)))
    return g


SEMANTIC_NC = 6
GENERATOR_SPECS: dict[str, Callable[[], GraphSpec]] = {
    "SPADEGenerator": lambda: _generator_spec(SPADEGenerator(SEMANTIC_NC, ngf=4, crop_size=64,
                                                             aspect_ratio=2.0)),
    "SPADEGenerator-vae": lambda: _generator_spec(SPADEGenerator(SEMANTIC_NC, ngf=4, crop_size=64,
                                                                 aspect_ratio=2.0, use_vae=True, z_dim=8)),
    "CLADEGenerator": lambda: _generator_spec(clade_generator(SEMANTIC_NC, ngf=4, crop_size=64,
                                                              aspect_ratio=2.0)),
    "SPADEGenerator-edges": lambda: _generator_spec(SPADEGenerator(SEMANTIC_NC, ngf=4, crop_size=64,
                                                                   aspect_ratio=2.0), num_extra=1),
    "CLADEGenerator-edges": lambda: _generator_spec(clade_generator(SEMANTIC_NC, ngf=4, crop_size=64,
                                                                    aspect_ratio=2.0), num_extra=1),
    "OASISGenerator": lambda: _generator_spec(OASISGenerator(SPADEGenerator(
        SEMANTIC_NC + 4, ngf=4, crop_size=64, aspect_ratio=2.0), z_dim=4)),
    "OASISGenerator-clade-edges-region": lambda: _generator_spec(OASISGenerator(clade_generator(
        SEMANTIC_NC + 4, ngf=4, crop_size=64, aspect_ratio=2.0), z_dim=4, noise_mode="region"), num_extra=1),
    "ConvEncoder": lambda: spade_encoder_spec(perturbed_(ConvEncoder(ngf=4, z_dim=8, input_size=32))),
    "SEANGenerator": lambda: rain_generator_spec(rain_generator()),
    "SEANGenerator-encoder": lambda: rain_encoder_spec(rain_generator()),
}
"""Mask-to-image networks: 32×64 outputs, syncbatch norms and spectral norm as trained."""

STYLE_SPECS: dict[str, Callable[[], GraphSpec]] = {
    "StyleTransfer-adain": lambda: style_transfer_spec(perturbed_(StyleTransfer(), gain=1.0)),
    "StyleTransfer-adacon": lambda: style_transfer_spec(perturbed_(StyleTransfer(
        modulation="adacon", style_dim=8, style_hidden=16, adacon_groups=64, adacon_local_window=3),
        gain=1.0)),
    "StyleTransfer-adain-from-code": lambda: style_code_spec(perturbed_(StyleTransfer(), gain=1.0))[1],
    "StyleTransfer-adain-code": lambda: style_code_spec(perturbed_(StyleTransfer(), gain=1.0))[0],
}
"""Style-transfer graphs (the full VGG-19 encoder; the spatial sizes are small)."""


def layer_case_spec(case: LayerCase) -> GraphSpec:
    """The export graph of one ``tests/condnorm/layer_cases.py`` case (built under seed 0)."""
    torch.manual_seed(0)
    return layer_spec(case.build(), *case.inputs())


def rain_checkpoint(tiny_trainer: Callable[..., pl.Trainer], root: Path, *, num_train: int = 2,
                    perturb: float = 0.0) -> Path:
    """``root/rain.ckpt``: a tiny RAIN mask-to-image module after two training steps on shapes.

    ``tiny_trainer`` is the fixture of that name (``tests/models/conftest.py``).

    ``perturb`` adds ``N(0, perturb²)`` to every generator parameter before saving: two steps
    barely move the zero-initialised styles and noise scales, so a test that compares images
    across backends gives them something to carry.
    """
    dm = SemanticDataModule(dataset_mode="shapes", crop_size=32, num_train=num_train, num_val=2, batch_size=2,
                            num_workers=0, no_instance=True)
    model = MaskToImageModule(generator="rain", ngf=8, ndf=8, num_D=1, n_layers_D=2, norm_G="syncbatch",
                              lambda_vgg=0.0, lpips=False, style_dim=8)
    trainer = tiny_trainer(root, max_steps=2, limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(model, datamodule=dm)
    if perturb:
        with torch.no_grad():
            for p in model.generator.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * perturb)
    ckpt = root / "rain.ckpt"
    trainer.save_checkpoint(ckpt)
    return ckpt
