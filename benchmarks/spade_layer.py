"""SPADE layer on a 151-class label map: the naive official layer vs condnorm.SPADE's paths.

Baseline ("naive"): the official structure (``benchmarks.spade_generator.NaiveSPADE``): resize
the one-hot map, ``mlp_shared`` as a 151→128 conv, separate ``mlp_gamma``/``mlp_beta`` convs,
train-mode BatchNorm, ``x̂ (1 + γ) + β``. Same weights in every variant.

Ours:
- "dense": :class:`condnorm.SPADE` on the same one-hot map (the dense path, for reference);
- "ids": the same layer on the class ids (the generator's default): its three convolutions run
  once per distinct label window/patch; the scene map comes from ``_harness.scene_labels``;
- "ids, noise map": i.i.d. random ids, the worst case (every patch distinct: ``mlp_gamma``/
  ``mlp_beta`` stay convolutions, ``mlp_shared`` is a window lookup);
- "ids bf16": the ids path under bf16 autocast;
- "label_conv2d": ``mlp_shared`` alone as an embedding bag over the 3×3 neighbourhood (the
  static-shape path used while tracing/compiling) against the 151→128 conv.

Bound: the naive layer's conv FLOPs at this run's measured conv throughput (3× for fwd+bwd).

    python benchmarks/spade_layer.py
    python benchmarks/spade_layer.py --quick
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

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
    scene_labels,
)
from benchmarks.spade_generator import NaiveSPADE
from condnorm.functional import labels_to_onehot
from condnorm.semantic_map import label_conv2d, label_windows

CASES = [(128, 256), (256, 128), (512, 64), (1024, 32)]  # (C, H = W): the generator's levels
QUICK_CASES = [(8, 16)]


def bench_case(channels: int, size: int, classes: int, hidden: int, repeats: int, gflops: float) -> list[Row]:
    torch.manual_seed(0)
    ours = condnorm.SPADE(channels, label_nc=classes, hidden=hidden)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.02)
    naive = NaiveSPADE(channels, classes, hidden)
    naive.load_state_dict(ours.state_dict())
    ids = scene_labels(1, size, classes)
    noise = torch.randint(classes, (1, size, size), generator=torch.Generator().manual_seed(1))
    onehot, noise_onehot = labels_to_onehot(ids, classes), labels_to_onehot(noise, classes)
    x = torch.randn(1, channels, size, size, requires_grad=True)
    grad = torch.randn(1, channels, size, size)
    check_close(f"C={channels} {size}² ids vs naive", ours(x, ids), naive(x, onehot), 1e-4)
    check_close(f"C={channels} {size}² noise ids vs naive", ours(x, noise), naive(x, noise_onehot), 1e-4)
    shared = naive.mlp_shared[0]
    check_close(f"C={channels} {size}² label_conv2d vs conv", label_conv2d(ids, shared.weight, shared.bias),
                shared(onehot), 1e-4)

    def fb(fn, *inputs, bf16=False):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = fn(*inputs)
            out.float().backward(grad if out.shape == grad.shape else torch.ones_like(out))
        return run

    variants = {"naive": (naive, x, onehot), "dense": (ours, x, onehot), "ids": (ours, x, ids),
                "ids, noise map": (ours, x, noise)}
    steps = {name: fb(*v) for name, v in variants.items()}
    steps["ids bf16"] = fb(ours, x, ids, bf16=True)
    with torch.no_grad():
        forwards = {name: (lambda m=m, a=a, b=b: m(a, b)) for name, (m, a, b) in variants.items()}
        t_fwd = measure(forwards, repeats=repeats)
    t_fb = measure(steps, repeats=repeats)
    t_shared = measure({"conv": fb(shared, onehot), "label_conv2d": fb(label_conv2d, ids, shared.weight,
                                                                        shared.bias)}, repeats=repeats)
    flops = 2 * size * size * 9 * hidden * (classes + 2 * channels)
    windows = label_windows(ids, 3)
    patches = windows.patches.shape[0] / ids.numel()
    label = f"SPADE C={channels} {size}²"
    return (rows_for(f"{label} fwd+bwd", t_fb, "naive", bounds={"dense": 3 * flops / gflops},
                     notes={"ids": f"{patches:.0%} distinct patches per pixel"})
            + rows_for(f"{label} fwd", t_fwd, "naive", bounds={"dense": flops / gflops})
            + rows_for(f"mlp_shared {classes}→{hidden} {size}² fwd+bwd", t_shared, "conv"))


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(__doc__.splitlines()[0], argv)
    classes, hidden = (7, 16) if args.quick else (151, 128)
    repeats = args.repeats or (1 if args.quick else 5)
    gflops = conv_throughput(256, 16 if args.quick else 64, repeats=3 if args.quick else 7)
    print(f"# measured fp32 conv throughput {gflops / 1e9:.0f} GFLOP/s (3×3, 256→256, 64²)")
    rows = []
    for channels, size in QUICK_CASES if args.quick else CASES:
        rows += bench_case(channels, size, classes, hidden, repeats, gflops)
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
