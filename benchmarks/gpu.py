"""GPU: SPADE generator training step and AdaIN transfer (512², 1024²), naive fp32 vs our fast paths.

Runs only where CUDA is available; on a CPU-only machine it says so and exits 0. ``--quick``
runs tiny sizes on the GPU; ``--dry-run-cpu`` runs the same tiny code on the CPU (CI uses it to
keep the script working where no GPU is lent).

SPADE generator (ADE20K: semantic_nc 151, ngf 64, 256², batch ``--batch``), one training step of
the generator (forward + backward):
- "naive fp32": the official structure (``spade_generator.NaiveSPADE``, per-layer resize), eager;
- "ours fp32": :class:`SPADEGenerator` on the one-hot map (recognised, runs on ids), eager;
- "ours bf16+CL": bf16 autocast, channels_last, eager;
- "ours bf16+CL compiled": the same under ``torch.compile``, fed the class ids (while compiling,
  SPADE uses the static-shape ``label_conv2d`` path for ``mlp_shared``).

AdaIN transfer (content + style, batch ``--batch``): "naive fp32" (``var`` statistics, NCHW eager)
against "ours bf16+CL compiled" (``StyleTransfer``, channels_last, bf16 autocast, ``torch.compile``).

Printed: ms per step and images/s (CUDA-synchronised medians). Targets: AdaIN 512² ≥ 200 img/s
on an H100-class GPU; SPADE-G training ≥ 2× the fp32 naive baseline on the same GPU.

    python benchmarks/gpu.py
    python benchmarks/gpu.py --batch 16
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import Row, check_close, measure, parse_args, print_table, scene_labels, target
from benchmarks.adain_op import naive_adain
from benchmarks.spade_generator import build, make_step, naive_forward
from condnorm.functional import labels_to_onehot
from models.adain import StyleTransfer


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``fn`` followed by a device synchronisation, so wall-clock timing covers the GPU work."""
    def run() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return run


def compile_for(device: torch.device):
    """``torch.compile`` on a GPU; on the CPU dry run, dynamo tracing only (inductor on CPU takes minutes)."""
    return torch.compile if device.type == "cuda" else lambda m: torch.compile(m, backend="eager")


def spade_rows(device: torch.device, batch: int, size: int, ngf: int, nc: int, repeats: int) -> list[Row]:
    ids = scene_labels(batch, size, nc).to(device)
    seg = labels_to_onehot(ids, nc)
    grad = torch.randn(batch, 3, size, size, device=device)
    naive, naive_fn = build("naive", nc, ngf, size)
    ours, _ = build("ours", nc, ngf, size)
    naive.to(device)
    ours.to(device)
    ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
    compiled = compile_for(device)(ours_cl)
    check_close("SPADE-G ours vs naive (fp32)", ours(seg), naive_forward(naive, seg), 1e-4)
    variants = {
        "naive fp32": make_step(naive, naive_fn, seg, grad),
        "ours fp32": make_step(ours, ours, seg, grad),
        "ours bf16+CL": make_step(ours_cl, ours_cl, seg.contiguous(memory_format=torch.channels_last), grad,
                                  bf16=True),
        "ours bf16+CL compiled": make_step(ours_cl, compiled, ids, grad, bf16=True),
    }
    timings = measure({k: synced(v, device) for k, v in variants.items()}, repeats=repeats, warmup=2)
    base = timings.median("naive fp32")
    rows = [Row(f"SPADE-G train step {size}² ×{batch}", name, timings.median(name), base,
                note=f"{batch / timings.median(name):.1f} img/s") for name in variants]
    if device.type == "cuda" and size >= 256:
        best = max(r.speedup for r in rows if r.variant != "naive fp32")
        print(target("SPADE-G training, best ours vs naive fp32", best, 2.0))
    return rows


def adain_rows(device: torch.device, batch: int, size: int, repeats: int) -> list[Row]:
    torch.manual_seed(0)
    net = StyleTransfer().eval().to(device)
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    compiled = compile_for(device)(net_cl)
    content = torch.rand(batch, 3, size, size, device=device)
    style = torch.rand(batch, 3, size, size, device=device)
    content_cl = content.contiguous(memory_format=torch.channels_last)
    style_cl = style.contiguous(memory_format=torch.channels_last)

    def naive() -> torch.Tensor:
        return net.decoder(naive_adain(net.encoder.encode(content), net.encoder.encode(style))).clamp(0, 1)

    def ours() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return compiled(content_cl, style_cl)

    variants = {"naive fp32": synced(naive, device), "ours bf16+CL compiled": synced(ours, device)}
    with torch.no_grad():
        check_close(f"AdaIN {size}² ours bf16 vs naive fp32 (stated tolerance)", ours(), naive(), 0.05)
        timings = measure(variants, repeats=repeats, warmup=2)
    base = timings.median("naive fp32")
    rows = [Row(f"AdaIN transfer {size}² ×{batch}", name, timings.median(name), base,
                note=f"{batch / timings.median(name):.1f} img/s") for name in timings.samples]
    if size == 512 and device.type == "cuda":
        print(target("AdaIN 512² images/s", batch / timings.median("ours bf16+CL compiled"), 200.0))
    return rows


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=8, help="images per step")
    parser.add_argument("--dry-run-cpu", action="store_true",
                        help="run the script's code on the CPU at tiny sizes (no timing claims)")


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    if not torch.cuda.is_available() and not args.dry_run_cpu:
        print("# no CUDA device available: nothing to measure (run this script on a machine with a GPU)")
        return []
    device = torch.device("cpu" if args.dry_run_cpu else "cuda")
    if device.type == "cuda":
        print(f"# device: {torch.cuda.get_device_name(device)}")
        torch.backends.cudnn.benchmark = True
    if args.quick or args.dry_run_cpu:  # tiny sizes: checks that every path runs
        rows = spade_rows(device, 1, 64, 4, 7, 1) + adain_rows(device, 1, 32, 1)
    else:
        batch, repeats = args.batch, args.repeats or 10
        rows = spade_rows(device, batch, 256, 64, 151, repeats) + adain_rows(device, batch, 512, repeats)
        rows += adain_rows(device, max(1, batch // 4), 1024, repeats)
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
