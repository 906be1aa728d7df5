"""onnxruntime vs eager PyTorch latency for the exported AdaIN network (512²) and SPADE generator (256²).

Each network is exported with ``models.app.export`` (``torch.onnx.export(dynamo=True)`` by default)
and run the way ``infer.py`` runs it, with the same pre/post-processing on both sides:

- AdaIN: ``StyleTransfer.transfer(content, style)`` vs ``OnnxStyleTransfer.transfer`` (content and
  style 512², batch 1; random weights, 7 M parameters, 380 GFLOP);
- SPADE: the generator as ``load_generator`` returns it (eval mode, spectral-norm hooks) and
  the same generator with spectral norm folded into its weights (what the graph holds) vs
  ``OnnxGenerator`` on the same one-hot map (ADE20K configuration: 151 input channels (150
  classes + dontcare), ngf 64, 256², batch 1, 96.5 M parameters; a scene-like label map). Both
  sides take SPADE's exact per-window path: eager PyTorch on the ids it finds in the one-hot
  map, the graph on the ids the runner feeds it (``torch.unique`` → ONNX ``Unique``).

Both backends get the same number of intra-op threads (``--threads``); eager and the graphs of
both ONNX exporters (``--onnx-exporter``) alternate round-robin after warm-up and the medians
are compared (ratio = ort / the fastest eager variant; the target is ≤ 1.1). The outputs are checked to agree
(max |diff| ≤ 1e-4) before timing.

    python benchmarks/export_latency.py
    python benchmarks/export_latency.py --quick      # tiny sizes, one round: a smoke test
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import condnorm
from benchmarks._harness import check_close, measure, parse_args, scene_labels, target
from models.adain import StyleTransfer
from models.adain.networks import torchvision_init_
from models.app.checkpoint import LabelLayout
from models.app.cli.spade import preprocess
from models.app.export.formats import export_onnx
from models.app.export.graphs import spade_generator_spec, style_transfer_spec
from models.app.export.prepare import prepare_for_export
from models.app.export.runtime import OnnxGenerator, OnnxStyleTransfer
from models.spade import SPADEGenerator
from tests.models.app.export_cases import perturbed_

EXPORTERS = {"dynamo": True, "tracing": False}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx-exporter", choices=(*EXPORTERS, "both"), default="both",
                        help="which ONNX exporter's graph to time (both: each, in the same rounds)")
    parser.add_argument("--ngf", type=int, default=64, help="SPADE generator width (64: ADE20K)")
    parser.add_argument("--only", choices=("adain", "spade"), help="time one network only")


def _sessions(spec, folder: Path, name: str, args: argparse.Namespace, load) -> dict[str, object]:
    """Export ``spec`` with the chosen exporter(s); ``{variant name: runner}``."""
    runners = {}
    for exporter, dynamo in EXPORTERS.items():
        if args.onnx_exporter not in (exporter, "both"):
            continue
        start = time.perf_counter()
        path = export_onnx(spec, folder / f"{name}_{exporter}.onnx", dynamo=dynamo)
        print(f"# exported {name} ({exporter}): {time.perf_counter() - start:.1f} s, "
              f"{path.stat().st_size / 2**20:.0f} MiB")
        runners[f"onnxruntime ({exporter})"] = load(path)
    return runners


def _rows(name: str, timings) -> list[str]:
    """One row per onnxruntime variant, against the fastest eager variant of the same run."""
    eagers = {v: timings.median(v) for v in timings.samples if v.startswith("eager")}
    fastest = min(eagers, key=eagers.get)
    print(f"# {name}: eager medians " + ", ".join(f"{v} {t * 1e3:.0f} ms" for v, t in eagers.items()))
    rows = []
    for variant in timings.samples:
        if variant not in eagers:
            ort, eager = timings.median(variant), eagers[fastest]
            print(target(f"{name} {variant}/{fastest}", ort / eager, 1.1, higher_is_better=False))
            rows.append(f"| {name} | {variant} vs {fastest} | {eager * 1e3:.0f} | {ort * 1e3:.0f} | "
                        f"{ort / eager:.2f} |")
    return rows


def bench_adain(args: argparse.Namespace, folder: Path, threads: int, repeats: int) -> list[str]:
    """AdaIN transfer, eager vs onnxruntime: table rows."""
    side = 64 if args.quick else 512
    net = StyleTransfer().eval()
    torchvision_init_(net.encoder)
    perturbed_(net.decoder, gain=1.4)  # random weights whose output spans [0, 1]: a meaningful check
    runners = _sessions(style_transfer_spec(net), folder, "adain", args, lambda path: OnnxStyleTransfer(
        path, providers=["CPUExecutionProvider"], threads=threads))
    content, style = torch.rand(1, 3, side, side), torch.rand(1, 3, side, side)
    variants = {"eager": lambda: net.transfer(content, style)}
    for variant, runner in runners.items():
        check_close(f"adain {variant} vs eager", runner.transfer(content, style), variants["eager"](), 1e-4)
        variants[variant] = lambda runner=runner: runner.transfer(content, style)
    return _rows(f"AdaIN transfer {side}²", measure(variants, repeats=repeats, warmup=args.warmup))


def bench_spade(args: argparse.Namespace, folder: Path, threads: int, repeats: int) -> list[str]:
    """SPADE generator, eager (as load_generator returns it) vs onnxruntime: table rows."""
    size, ngf = (64, 8) if args.quick else (256, args.ngf)
    layout = LabelLayout(150, True, False)
    generator = perturbed_(SPADEGenerator(layout.semantic_nc, ngf=ngf, crop_size=size))
    seg = preprocess(list(scene_labels(1, size, 150)), None, layout, generator.output_size)
    condnorm.recalibrate(generator, [seg])  # random weights with trained-like statistics
    generator.eval()
    params = sum(p.numel() for p in generator.parameters()) / 1e6
    runners = _sessions(spade_generator_spec(generator), folder, "spade", args, lambda path: OnnxGenerator(
        path, providers=["CPUExecutionProvider"], threads=threads))
    folded = prepare_for_export(generator)  # the network the graph holds: spectral norm folded
    variants = {"eager": lambda: generator(seg), "eager (SN folded)": lambda: folded(seg)}
    for variant, runner in runners.items():
        check_close(f"spade {variant} vs eager", runner(seg), variants["eager"](), 1e-4)
        variants[variant] = lambda runner=runner: runner(seg)
    name = f"SPADE generator {size}² (ngf {ngf}, {params:.1f} M params)"
    return _rows(name, measure(variants, repeats=repeats, warmup=args.warmup))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], extra=_options)
    import onnxruntime as ort

    threads = torch.get_num_threads()
    print(f"# onnxruntime {ort.__version__} (CPUExecutionProvider, intra-op threads {threads})")
    repeats = 1 if args.quick else (args.repeats or 5)
    lines = ["| network | backend | eager ms | onnxruntime ms | ort / eager |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        if args.only in (None, "adain"):
            lines += bench_adain(args, Path(tmp), threads, repeats)
        if args.only in (None, "spade"):
            lines += bench_spade(args, Path(tmp), threads, repeats)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
