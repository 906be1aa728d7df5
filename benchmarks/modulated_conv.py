"""ModulatedConv2d: one batched convolution for the whole batch vs a per-sample loop.

Baseline ("per-sample loop"): what a StyleGAN2 port without batching does: for each sample,
scale the shared weight by its styles, demodulate it and run one ``F.conv2d``. Ours:
:class:`condnorm.ModulatedConv2d` as built by default ("batched": the activation form, ``x · s``,
one convolution with the shared weight for the whole batch, ``· d``), and its ``grouped=True``
form (per-sample weights, one grouped conv, ``groups = N``). Same weights and inputs; forward and
forward+backward, median of round-robin repeats. The cases are StyleGAN2's 512-channel layers
at 4²–32² (batch 8) and a 64-channel one.

Bound (CPU): the layer's conv FLOPs (``2·N·O·I·9·H·W``, 3× for fwd+bwd) at this run's measured
3×3 conv throughput: a per-sample loop that already runs near it leaves no room for a 3× gain.

    python benchmarks/modulated_conv.py                 # batch 8, 512→512 3×3 at 4², 8², 16², 32²; 64→64
    python benchmarks/modulated_conv.py --device cuda   # the same on a GPU
    python benchmarks/modulated_conv.py --quick         # CI smoke: tiny sizes, no timing claims
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import condnorm
from benchmarks._harness import (
    Row,
    check_close,
    conv_throughput,
    measure,
    parse_args,
    print_table,
    rows_for,
    target,
)

CASES = [(8, 512, 4), (8, 512, 8), (8, 512, 16), (8, 512, 32), (8, 64, 32)]  # (batch, channels, size)
QUICK_CASES = [(2, 8, 8)]


def per_sample_loop(layer: condnorm.ModulatedConv2d, x: Tensor, style: Tensor) -> Tensor:
    """The baseline: one modulated, demodulated weight and one convolution per sample."""
    styles = layer.styles(style)
    outs = []
    for n in range(x.shape[0]):
        w = layer.weight * styles[n].view(1, -1, 1, 1)
        w = w * torch.rsqrt(w.square().sum((1, 2, 3), keepdim=True) + 1e-8)
        outs.append(F.conv2d(x[n:n + 1], w, padding=w.shape[-1] // 2))
    return torch.cat(outs) + layer.bias.view(1, -1, 1, 1)


def _synced(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    def run() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return run


def bench_case(batch: int, channels: int, size: int, repeats: int, device: torch.device,
               flop_rate: float | None) -> list[Row]:
    torch.manual_seed(0)
    layer = condnorm.ModulatedConv2d(channels, out_channels=channels, style_dim=channels).to(device)
    x = torch.randn(batch, channels, size, size, device=device, requires_grad=True)
    style = torch.randn(batch, channels, device=device)
    label = f"ModulatedConv2d ×{batch} {channels}→{channels} 3×3 {size}²"
    check_close(label, layer(x, style), per_sample_loop(layer, x, style), 1e-3)
    grad = torch.randn(batch, channels, size, size, device=device)
    grouped = condnorm.ModulatedConv2d(channels, out_channels=channels, style_dim=channels, grouped=True).to(device)
    grouped.load_state_dict(layer.state_dict())
    check_close(f"{label} grouped form", grouped(x, style), layer(x, style), 1e-3)
    variants = {"per-sample loop": lambda: per_sample_loop(layer, x, style),
                "batched": lambda: layer(x, style), "grouped": lambda: grouped(x, style)}

    def step(fn: Callable[[], Tensor]) -> Callable[[], None]:
        return lambda: fn().backward(grad)

    with torch.no_grad():
        fwd = measure({k: _synced(v, device) for k, v in variants.items()}, repeats=repeats)
    fb = measure({k: _synced(step(v), device) for k, v in variants.items()}, repeats=repeats)
    base = "per-sample loop"
    bound = {} if flop_rate is None else {"batched": 2 * batch * channels**2 * 9 * size**2 / flop_rate}
    bound_fb = {k: 3 * v for k, v in bound.items()}
    return (rows_for(f"{label} fwd", fwd, base, bounds=bound)
            + rows_for(f"{label} fwd+bwd", fb, base, bounds=bound_fb))


def main(argv: Sequence[str] | None = None) -> list[Row]:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--device", default="cpu", help="cpu or cuda")

    args = parse_args(__doc__.splitlines()[0], argv, extra)
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 7)
    flop_rate = None
    if device.type == "cpu":
        flop_rate = conv_throughput(256, 16 if args.quick else 64, repeats=3 if args.quick else 7)
        print(f"# measured fp32 conv throughput {flop_rate / 1e9:.0f} GFLOP/s (3×3, 256→256, 64²)")
    rows = []
    for batch, channels, size in QUICK_CASES if args.quick else CASES:
        rows += bench_case(batch, channels, size, repeats, device, flop_rate)
    print_table(rows)
    if not args.quick:
        for row in rows:
            if row.variant == "batched":
                print(target(f"{row.subject} batched vs loop", row.speedup, 3.0))
    return rows


if __name__ == "__main__":
    main()
