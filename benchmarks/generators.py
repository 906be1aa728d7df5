"""CLADE-G vs SPADE-G vs RAIN-G (SEAN): parameters and forward time on one configuration.

All three share SPADE's backbone (``fc``, the residual blocks' convs, ``conv_img``); they differ
in the conditional norms: SPADE predicts γ, β with three convs per layer, CLADE looks them up in
per-class tables, RAIN blends a SPADE branch with per-region style codes (a per-class
``style_dim²`` linear, two ``style_dim → C`` convs). RAIN-G is timed from precomputed codes and,
separately, with its style encoder run on a style image. Everything runs in eval mode under
``torch.inference_mode`` on the same one-hot map (batch ``--batch``); the variants are
interleaved and the ratios come from medians of the same run. SPADE-G and CLADE-G take the
one-hot map the way users pass it (the generator may switch to its class-id path);
"SPADE-G (dense map)" gets a soft copy, which keeps every SPADE layer on dense convolutions
(the official structure), as RAIN-G's SPADE branch always is. The GFLOP column counts every
``nn.Conv2d``/``nn.Linear`` call on a soft copy of the map (the dense-conv cost, independent of
load and of SPADE's one-hot fast path; RAIN's per-class linears, a batched product, are not in it).

    python benchmarks/generators.py                   # label_nc 19, ngf 32, 256², style_dim 512
    python benchmarks/generators.py --ngf 64          # SEAN's CelebAMask-HQ generator
    python benchmarks/generators.py --quick           # CI smoke: tiny sizes, no timing claims
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import conv2d_flops, measure, parse_args, scene_labels
from models.generators import build_generator


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label-nc", type=int, default=19, help="classes (CelebAMask-HQ: 19)")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="output side (crop_size)")
    parser.add_argument("--style-dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)


def count(module: nn.Module, keep: Callable[[str], bool] = lambda name: True) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if keep(name))


def main(argv: list[str] | None = None) -> dict[str, tuple[int, float]]:
    """Run the comparison and print the table; returns ``{variant: (parameters, median seconds)}``."""
    args = parse_args(__doc__.splitlines()[0], argv, options)
    if args.quick:
        args.label_nc, args.ngf, args.size, args.style_dim, args.batch = 5, 4, 32, 16, 1
    repeats = args.repeats or (1 if args.quick else 5)
    print(f"# label_nc {args.label_nc}, ngf {args.ngf}, {args.size}², style_dim {args.style_dim}, "
          f"batch {args.batch}, norm batch (eval), spectral norm on, {repeats} round(s) interleaved")
    torch.manual_seed(0)
    shared = dict(ngf=args.ngf, crop_size=args.size, norm="batch")
    nets = {"SPADE-G": build_generator("spade", args.label_nc, **shared),
            "CLADE-G": build_generator("clade", args.label_nc, **shared),
            "RAIN-G": build_generator("rain", args.label_nc, style_dim=args.style_dim, **shared)}
    for net in nets.values():
        net.eval()
    labels = scene_labels(args.batch, args.size, args.label_nc)
    seg = torch.nn.functional.one_hot(labels, args.label_nc).permute(0, 3, 1, 2).float()
    image = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1
    rain = nets["RAIN-G"]
    with torch.inference_mode():
        codes = rain.encode(image, seg)

    def run(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def timed() -> None:
            with torch.inference_mode():
                out = fn()
            if not torch.isfinite(out).all():
                raise AssertionError("non-finite output")
        return timed

    soft = seg * 0.999  # not one-hot: every layer takes its dense path, so every conv is counted
    variants = {
        "SPADE-G": run(lambda: nets["SPADE-G"](seg)),
        "SPADE-G (dense map)": run(lambda: nets["SPADE-G"](soft)),
        "CLADE-G": run(lambda: nets["CLADE-G"](seg)),
        "RAIN-G": run(lambda: rain(seg, style_codes=codes, noise=torch.Generator().manual_seed(0))),
        "RAIN-G + encoder": run(lambda: rain(seg, style_image=image, noise=torch.Generator().manual_seed(0))),
    }
    flops = {"SPADE-G": conv2d_flops(nets["SPADE-G"], lambda: nets["SPADE-G"](soft)),
             "CLADE-G": conv2d_flops(nets["CLADE-G"], lambda: nets["CLADE-G"](soft)),
             "RAIN-G": conv2d_flops(rain, lambda: rain(soft, style_codes=codes)),
             "RAIN-G + encoder": conv2d_flops(rain, lambda: rain(soft, style_image=image))}
    flops["SPADE-G (dense map)"] = flops["SPADE-G"]
    timings = measure(variants, repeats=repeats, warmup=1)
    base_t, base_p = timings.median("SPADE-G"), count(nets["SPADE-G"])
    in_norms = {name: count(net, lambda n: ".norm_" in n or ".ace_" in n) for name, net in nets.items()}
    results = {}
    print("| generator | params (M) | in the norms (M) | params / SPADE-G | conv GFLOP | GFLOP / SPADE-G "
          "| forward ms (median) | time / SPADE-G |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in variants:
        key = name.split(" ")[0]
        net = nets[key]
        params = count(net) if name != "RAIN-G" else count(net, lambda n: not n.startswith("Zencoder."))
        t = timings.median(name)
        results[name] = (params, t)
        print(f"| {name} | {params / 1e6:.2f} | {in_norms[key] / 1e6:.2f} | "
              f"{params / base_p:.2f} | {flops[name] / 1e9:.1f} | {flops[name] / flops['SPADE-G']:.2f} | "
              f"{t * 1e3:.1f} | {t / base_t:.2f} |")
    print(f"# RAIN-G's style encoder: {count(rain.Zencoder) / 1e6:.2f} M parameters "
          f"(counted in 'RAIN-G + encoder' only)")
    return results


if __name__ == "__main__":
    main()
