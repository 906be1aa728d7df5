"""AdaIN style transfer at 512²: the naive pipeline vs StyleTransfer eager, channels_last, compiled, bf16.

Network: the normalised VGG-19 to relu4_1 and the mirrored decoder (``models.adain``; random
weights, 7 M parameters), content and style 512², batch 1, inference (``no_grad``, eval).

Baseline ("naive"): encode content and style, the paper's AdaIN formula as the reference code
computes it (``benchmarks.adain_op.naive_adain``: ``var`` statistics), decode; NCHW fp32 eager.

Ours: :meth:`models.adain.StyleTransfer.transfer` (the two-pass statistics, no ``torch.var``):
NCHW eager; channels_last eager; ``torch.compile`` with inductor's weight freezing on channels_last
(mkldnn conv + fused ReLU); bf16 autocast (channels_last eager).

Bound: the fp32 conv-FLOP bound: the network's conv FLOPs (counted from the modules) at the conv
throughput measured in this run (the best of NCHW and channels_last, 3×3 256→256 at 128²).

    python benchmarks/adain_transfer.py
    python benchmarks/adain_transfer.py --quick
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import (
    Row,
    check_close,
    conv2d_flops,
    conv_throughput,
    measure,
    parse_args,
    print_table,
    rows_for,
    target,
)
from benchmarks.adain_op import naive_adain
from models.adain import StyleTransfer


def naive_transfer(net: StyleTransfer, content: Tensor, style: Tensor) -> Tensor:
    """The official pipeline: encode both, AdaIN with ``var`` statistics, decode, clamp."""
    return net.decoder(naive_adain(net.encoder.encode(content), net.encoder.encode(style))).clamp(0, 1)


def compiled_transfer(net: StyleTransfer):
    """``torch.compile`` of the transfer with inductor's freezing (inference: weights become constants)."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(net)


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=None, help="content and style size (default 512)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled variant")


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    size = args.size or (32 if args.quick else 512)
    repeats = args.repeats or (1 if args.quick else 5)
    torch.manual_seed(0)
    net = StyleTransfer().eval()
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, size, size, generator=g)
    content_cl = content.contiguous(memory_format=torch.channels_last)
    style_cl = style.contiguous(memory_format=torch.channels_last)

    variants = {
        "naive": lambda: naive_transfer(net, content, style),
        "ours NCHW": lambda: net(content, style),
        "ours channels_last": lambda: net_cl(content_cl, style_cl),
    }
    with torch.no_grad():
        expected = naive_transfer(net, content, style)
        feats = net.encoder.encode(content), net.encoder.encode(style)
        raw = net.decoder(naive_adain(*feats))
        print(f"# decoder output range [{raw.min():.3f}, {raw.max():.3f}] (checked before clamping too)")
        check_close("decoder(AdaIN) ours vs naive", net.decoder(net.modulation(*feats)), raw, 1e-4)
        check_close("transfer NCHW vs naive", net(content, style), expected, 1e-4)
        check_close("transfer channels_last vs naive", net_cl(content_cl, style_cl), expected, 1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = net_cl(content_cl, style_cl)
        check_close("transfer bf16 autocast vs naive fp32 (stated tolerance)", bf16.float(), expected, 0.05)
        if not (args.quick or args.no_compile):
            compiled = compiled_transfer(net_cl)
            check_close("transfer compiled vs naive", compiled(content_cl, style_cl), expected, 1e-4)
            variants["ours compiled"] = lambda: compiled(content_cl, style_cl)

        def bf16_run() -> Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net_cl(content_cl, style_cl)

        variants["ours bf16"] = bf16_run
        timings = measure(variants, repeats=repeats)
        flops = conv2d_flops(net, lambda: naive_transfer(net, content, style))
    probe = 16 if args.quick else 128
    gflops = max(conv_throughput(256, probe, repeats=repeats, channels_last=cl) for cl in (False, True))
    bound = flops / gflops
    print(f"# conv FLOPs {flops / 1e9:.1f} G; measured fp32 conv throughput {gflops / 1e9:.0f} GFLOP/s "
          f"→ bound {bound * 1e3:.0f} ms")
    rows = rows_for(f"AdaIN transfer {size}²", timings, "naive",
                    bounds={name: bound for name in variants if name != "ours bf16"},
                    notes={"ours bf16": "bf16 runs ~2× the fp32 conv rate, below the fp32 bound"})
    print_table(rows)
    if "ours compiled" in variants:
        ratio = timings.median("ours compiled") / bound
        print(target("compiled / fp32 conv-FLOP bound", ratio, 1.15, higher_is_better=False))
    return rows


if __name__ == "__main__":
    main()
