r"""``infer.py export``: a checkpoint in, a deployable file out.

Examples:
    python infer.py export --checkpoint run.ckpt --task spade --format onnx --out spade.onnx
    python infer.py export --checkpoint run.ckpt --task spade --part encoder --format onnx \\
        --out spade_encoder.onnx
    python infer.py export --vgg vgg_normalised.pth --decoder decoder.pth --task adain \\
        --format torchscript --out adain.pt
    python infer.py export --checkpoint run.ckpt --task spade --format safetensors --out g.safetensors
    python infer.py export --checkpoint rain.ckpt --task rain --format onnx --out rain.onnx
    python infer.py export --checkpoint sdm.ckpt --task sdm --format onnx --out sdm.onnx

Then ``python infer.py spade --onnx spade.onnx --labels …`` or ``python infer.py adain --onnx
adain.onnx …`` run the file with onnxruntime; the TorchScript file loads in C++ with
``torch::jit::load``, the ``.pt2`` with ``torch.export.load``, the safetensors file with
:func:`models.app.export.architecture.load_exported_safetensors` (or :class:`models.app.MaskToImage`).

The network is prepared first (:func:`~models.app.export.prepare.prepare_for_export`): the EMA
generator when the checkpoint has one, eval mode, spectral norm folded, SyncBatchNorm → BatchNorm.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from torch import nn

from models.sdm import DDIMSampler
from models.sean import SEANGenerator

from ..checkpoint import load_encoder, load_generator, load_style_transfer
from ..export.architecture import save_exported_safetensors
from ..export.formats import FORMATS, GraphSpec, export
from ..export.graphs import (
    rain_encoder_spec,
    rain_generator_spec,
    sdm_denoiser_spec,
    spade_encoder_spec,
    spade_generator_spec,
    style_transfer_spec,
)
from .spade import add_official_arguments, layout_from_args, official_options

__all__ = ["add_arguments", "run"]

TASKS = ("spade", "adain", "rain", "sdm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``infer.py export``."""
    parser.add_argument("--task", required=True, choices=TASKS,
                        help="spade: mask-to-image generator (SPADE or CLADE, GAN- or OASIS-trained); "
                             "rain: RAIN/SEAN generator; adain: style transfer; sdm: the SDM diffusion denoiser "
                             "(x_t, t, mask) -> eps")
    parser.add_argument("--checkpoint", help="Lightning .ckpt from train.py, or official SPADE *_net_G.pth")
    parser.add_argument("--format", required=True, choices=(*FORMATS, "safetensors"),
                        help="onnx, torchscript (traced), export (torch.export .pt2) or safetensors (+ JSON)")
    parser.add_argument("--out", required=True, help="output file")
    parser.add_argument("--part", choices=("generator", "encoder"), default="generator",
                        help="the generator, or its encoder: spade's VAE encoder (image → mu, logvar), "
                             "rain's style encoder ((style image, segmap) → style codes)")
    parser.add_argument("--onnx-exporter", choices=("dynamo", "tracing"), default="dynamo",
                        help="torch.onnx.export(dynamo=True) (default) or the legacy TorchScript-tracing one")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset")
    parser.add_argument("--vgg", help="adain: AdaIN's vgg_normalised.pth (with --decoder, not --checkpoint)")
    parser.add_argument("--decoder", help="adain: AdaIN's decoder.pth (with --vgg)")
    add_official_arguments(parser)
    parser.set_defaults(device="cpu")


def _spade(args: argparse.Namespace) -> tuple[nn.Module, GraphSpec | None, dict[str, Any]]:
    generator, layout = load_generator(args.checkpoint, layout=layout_from_args(args), **official_options(args))
    if isinstance(generator, SEANGenerator):
        raise ValueError(f"{args.checkpoint} holds a RAIN (SEAN) generator: export it with --task rain")
    if isinstance(generator, DDIMSampler):
        raise ValueError(f"{args.checkpoint} holds an SDM diffusion model: export it with --task sdm")
    meta = {"label_layout": layout.to_dict(), "source": Path(args.checkpoint).name}
    if args.part == "encoder":
        encoder = load_encoder(args.checkpoint)
        spec = spade_encoder_spec(encoder, metadata=meta) if args.format != "safetensors" else None
        return encoder, spec, meta
    spec = spade_generator_spec(generator, num_extra=int(layout.use_instance), metadata=meta) \
        if args.format != "safetensors" else None
    return generator, spec, meta


def _rain(args: argparse.Namespace) -> tuple[nn.Module, GraphSpec | None, dict[str, Any]]:
    generator, layout = load_generator(args.checkpoint, layout=layout_from_args(args), kind="rain",
                                       **official_options(args))
    if not isinstance(generator, SEANGenerator):
        raise ValueError(f"{args.checkpoint} holds a {type(generator).__name__}, not a RAIN (SEAN) "
                         "generator: export it with --task spade")
    meta = {"label_layout": layout.to_dict(), "source": Path(args.checkpoint).name}
    if args.format == "safetensors":
        if args.part == "encoder":
            raise ValueError("--format safetensors writes the whole generator, style encoder included; "
                             "drop --part encoder")
        return generator, None, meta
    build = rain_encoder_spec if args.part == "encoder" else rain_generator_spec
    return generator, build(generator, metadata=meta), meta


def _sdm(args: argparse.Namespace) -> tuple[nn.Module, GraphSpec | None, dict[str, Any]]:
    sampler, layout = load_generator(args.checkpoint)
    if not isinstance(sampler, DDIMSampler):
        raise ValueError(f"{args.checkpoint} holds a {type(sampler).__name__}, not an SDM diffusion model: "
                         "export it with --task spade")
    if args.format == "safetensors" or args.part != "generator":
        raise ValueError("--task sdm exports the denoiser as a graph: use --format onnx, torchscript or export, "
                         "without --part")
    meta = {"label_layout": layout.to_dict(), "source": Path(args.checkpoint).name}
    return sampler.denoiser, sdm_denoiser_spec(sampler, metadata=meta), meta


def _adain(args: argparse.Namespace) -> tuple[nn.Module, GraphSpec | None, dict[str, Any]]:
    if args.part != "generator":
        raise ValueError("--part encoder applies to --task spade")
    if bool(args.checkpoint) == bool(args.vgg and args.decoder):
        raise ValueError("--task adain: give --checkpoint (train.py) or --vgg and --decoder (published "
                         "weights)")
    net = load_style_transfer(checkpoint=args.checkpoint, vgg=args.vgg, decoder=args.decoder)
    meta = {"source": Path(args.checkpoint or args.decoder).name}
    return net, style_transfer_spec(net, metadata=meta) if args.format != "safetensors" else None, meta


def _write(args: argparse.Namespace, network: nn.Module, spec: GraphSpec | None, meta: dict[str, Any],
           path: Path) -> list[Path]:
    """Write the export to ``path``; returns every file written."""
    if args.format == "safetensors":
        path = save_exported_safetensors(network, path, metadata={"task": args.task, **meta})
        return [path, path.with_suffix(".json")]
    options = {"dynamo": args.onnx_exporter == "dynamo", "opset": args.opset} if args.format == "onnx" else {}
    return [export(spec, path, args.format, **options)]


def run(args: argparse.Namespace) -> int:
    """Export the checkpoint's network; returns 0.

    The files are written under temporary names beside ``--out`` and renamed over it at the end,
    so an interrupted export leaves the previous good file in place.
    """
    if args.task != "adain" and not args.checkpoint:
        raise ValueError(f"--task {args.task} needs --checkpoint")
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the file to write (e.g. {out / 'model.onnx'})")
    network, spec, meta = {"spade": _spade, "rain": _rain, "adain": _adain, "sdm": _sdm}[args.task](args)
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")
    written: list[Path] = []
    try:
        written = _write(args, network, spec, meta, partial)
        finals = [out.with_suffix(p.suffix) for p in written]
        for tmp, final in zip(written, finals):
            os.replace(tmp, final)
    finally:  # nothing partial is left, whatever stopped the export
        for tmp in {partial, partial.with_suffix(".json"), *written}:
            tmp.unlink(missing_ok=True)
    print(f"wrote {' and '.join(map(str, finals))} ({args.format}, {time.perf_counter() - start:.1f} s)")
    return 0
