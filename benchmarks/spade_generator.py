"""SPADE generator (ADE20K configuration) training step: naive official structure vs condnorm, bf16, CLADE.

Configuration: semantic_nc 151 (150 classes + dontcare), ngf 64, 256², "normal" upsampling,
spectral norm, train-mode BatchNorm, batch 1, fp32; the input is the dense one-hot map the
training module builds (``semantic_input``), from a scene-like label layout
(``_harness.scene_labels``; real ADE20K maps have 10–40 segments).

Baseline ("naive"): the official structure written here: every SPADE layer interpolates the
full-size segmap itself, runs ``mlp_shared`` as a 151→128 conv and ``mlp_gamma``/``mlp_beta``
as two separate convs; spectral norm divides the weights (the hook). Same parameters, same
weights (loaded from ours).

Ours: :class:`models.spade.SPADEGenerator`: it recognises the one-hot map, resizes the ids once
per resolution, every SPADE layer computes its three convolutions once per distinct label
window/patch, and spectral norm divides the outputs of the low-resolution convs instead of
their (larger) weights (all exact). "CLADE" is the same generator with :class:`condnorm.CLADE` norms.

Bound: the naive generator's conv FLOPs (counted) at the conv throughput measured in this run
(forward+backward = 3× forward FLOPs). Ours does fewer FLOPs than that, so it can beat it.
Peak memory: the growth of glibc's in-use heap during one training step, sampled after every aten
op (live allocations, not RSS: fragmentation and malloc padding do not blur it).

    python benchmarks/spade_generator.py              # full size, ~2–5 min
    python benchmarks/spade_generator.py --ngf 32     # smaller widths when time is short
    python benchmarks/spade_generator.py --quick      # CI smoke
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import condnorm
from benchmarks._harness import (
    Row,
    check_close,
    conv2d_flops,
    conv_throughput,
    measure,
    parse_args,
    peak_heap_growth,
    print_table,
    rows_for,
    scene_labels,
    target,
)
from condnorm.functional import labels_to_onehot
from models.spade.generator import SPADEGenerator


class NaiveSPADE(nn.Module):
    """SPADE as the official code writes it (same parameter names): per-layer resize, separate γ/β convs."""

    def __init__(self, num_features: int, label_nc: int, hidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(num_features, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, num_features, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, num_features, 3, padding=1)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


def naive_block(block: nn.Module, x: Tensor, seg: Tensor) -> Tensor:
    """The official residual block: spectral norm through the hook (the weight divided by σ)."""
    shortcut = block.conv_s(block.norm_s(x, seg)) if block.learned_shortcut else x
    dx = block.conv_0(F.leaky_relu(block.norm_0(x, seg), 0.2))
    dx = block.conv_1(F.leaky_relu(block.norm_1(dx, seg), 0.2))
    return shortcut + dx


def naive_forward(g: SPADEGenerator, seg: Tensor) -> Tensor:
    """The official generator forward: every block gets the full-size map."""
    x = g.fc(F.interpolate(seg, size=g.latent_size, mode="nearest"))
    for name, upsample in g._schedule:
        if upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = naive_block(getattr(g, name), x, seg)
    return torch.tanh(g.conv_img(F.leaky_relu(x, 0.2)))


def build(variant: str, semantic_nc: int, ngf: int, crop: int, seed: int = 0) -> tuple[nn.Module, Callable]:
    """The generator of a variant and its forward; all SPADE variants share the same weights."""
    kw = {"ngf": ngf, "crop_size": crop, "norm": "batch"}
    if variant == "clade":
        clade = functools.partial(condnorm.CLADE, label_nc=semantic_nc)
        g = SPADEGenerator(semantic_nc, norm_layer=clade, **kw)
        torch.manual_seed(seed)
        with torch.no_grad():
            for norm in g.norms():
                norm.weight.normal_(0, 0.02)
                norm.bias.normal_(0, 0.02)
        return g, g
    torch.manual_seed(seed)
    ours = SPADEGenerator(semantic_nc, **kw)
    with torch.no_grad():  # the official xavier(0.02) init of the SPADE convs, so γ, β are not zero
        for norm in ours.norms():
            for conv in (norm.mlp_shared[0], norm.mlp_gamma, norm.mlp_beta):
                nn.init.xavier_normal_(conv.weight, gain=0.02)
                conv.bias.normal_(0, 0.02)
    if variant != "naive":
        return ours, ours
    naive = SPADEGenerator(semantic_nc, norm_layer=functools.partial(NaiveSPADE, label_nc=semantic_nc), **kw)
    naive.load_state_dict(ours.state_dict())
    return naive, functools.partial(naive_forward, naive)


def make_step(model: nn.Module, forward: Callable, seg: Tensor, grad: Tensor, *, bf16: bool = False,
              backward: bool = True) -> Callable[[], Tensor]:
    """One forward (+ backward of ``grad``) of ``forward(seg)``, gradients reset first; bf16 = autocast."""
    params = list(model.parameters())

    def step() -> Tensor:
        for p in params:
            p.grad = None
        autocast = torch.autocast(seg.device.type, dtype=torch.bfloat16, enabled=bf16)
        with autocast, torch.set_grad_enabled(backward):
            out = forward(seg)
        if backward:
            out.float().backward(grad)
        return out

    return step


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ngf", type=int, default=None, help="base width (64 = the ADE20K model)")
    parser.add_argument("--crop", type=int, default=None, help="image size")


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    semantic_nc = 7 if args.quick else 151
    args.ngf = args.ngf or (4 if args.quick else 64)
    args.crop = args.crop or (64 if args.quick else 256)
    repeats = args.repeats or (1 if args.quick else 3)
    labels = scene_labels(1, args.crop, semantic_nc)
    seg = labels_to_onehot(labels, semantic_nc)
    grad = torch.randn(1, 3, args.crop, args.crop, generator=torch.Generator().manual_seed(1))
    models = {v: build(v, semantic_nc, args.ngf, args.crop) for v in ("naive", "ours", "clade")}
    print(f"# ngf {args.ngf}, {args.crop}², semantic_nc {semantic_nc}, batch 1; label map: "
          f"{labels.unique().numel()} classes")

    outs = {}
    for v in ("naive", "ours"):  # one checked training step each (also the warm-up)
        outs[v] = make_step(*models[v], seg, grad)()
    check_close("generator output, ours vs naive (fp32)", outs["ours"], outs["naive"], 1e-4)
    grads = {v: torch.cat([p.grad.flatten() for p in models[v][0].parameters()]) for v in ("naive", "ours")}
    # fp32 gradients of this model are only good to a few 1e-3 (batch 1 through train-mode BatchNorm on
    # 8×8 maps): measured against float64, the naive path is 4.5e-3 off (relative L2) and ours 2.2e-3;
    # in float64 the two agree to 1e-15 (tests/condnorm/test_fast_paths.py checks the gradients on small models).
    rel = (grads["ours"] - grads["naive"]).norm() / grads["naive"].norm()
    print(f"# check parameter gradients, ours vs naive: relative L2 difference {rel:.1e} (tolerance 1e-2)")
    if not rel <= 1e-2:
        raise AssertionError(f"parameter gradients differ: relative L2 difference {rel:.2e}")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16_out = models["ours"][1](seg)
    check_close("generator output, ours bf16 autocast vs naive fp32", bf16_out.float(), outs["naive"], 0.1)

    variants = {"naive": ("naive", False), "ours": ("ours", False), "ours bf16": ("ours", True),
                "CLADE": ("clade", False)}
    fb = {name: make_step(*models[m], seg, grad, bf16=bf16) for name, (m, bf16) in variants.items()}
    fwd = {name: make_step(*models[m], seg, grad, bf16=bf16, backward=False)
           for name, (m, bf16) in variants.items()}
    t_fb = measure(fb, repeats=repeats, warmup=0 if args.quick else 1)
    t_fwd = measure(fwd, repeats=repeats)

    flops = conv2d_flops(models["naive"][0], lambda: models["naive"][1](seg))
    clade_flops = conv2d_flops(models["clade"][0], lambda: models["clade"][0](seg))
    gflops = conv_throughput(256, 16 if args.quick else 64, repeats=3 if args.quick else 7)
    print(f"# conv FLOPs forward: naive {flops / 1e9:.1f} G, CLADE {clade_flops / 1e9:.1f} G; "
          f"measured fp32 conv throughput {gflops / 1e9:.0f} GFLOP/s")
    bound_fwd, bound_fb = flops / gflops, 3 * flops / gflops
    memory = {v: peak_heap_growth(make_step(*models[v], seg, grad)) for v in ("naive", "ours")}
    notes = {}
    if None not in memory.values():
        notes["ours"] = f"peak step memory {memory['ours'] / 2**20:.0f} vs {memory['naive'] / 2**20:.0f} MiB"
    rows = (rows_for("SPADE-G fwd+bwd", t_fb, "naive", bounds={"ours": bound_fb}, notes=notes)
            + rows_for("SPADE-G fwd", t_fwd, "naive", bounds={"ours": bound_fwd}))
    rows.append(Row("SPADE-G fwd+bwd", "CLADE vs ours", t_fb.median("CLADE"), t_fb.median("ours")))
    print_table(rows)
    if not args.quick:
        speed = {r.variant: r.speedup for r in rows if r.subject == "SPADE-G fwd+bwd"}
        print(target("ours vs naive, fwd+bwd fp32", speed["ours"], 1.25))
        print(target("ours bf16 vs naive fp32, fwd+bwd", speed["ours bf16"], 2.0))
        print(target("CLADE vs naive SPADE generator, fwd+bwd", speed["CLADE"], 3.5))
        print(target("CLADE vs our SPADE generator, fwd+bwd", speed["CLADE vs ours"], 3.5))
        if None not in memory.values():
            ratio = memory["ours"] / memory["naive"]
            print(target("peak step memory ours / naive", ratio, 1.0, higher_is_better=False))
    return rows


if __name__ == "__main__":
    main()
