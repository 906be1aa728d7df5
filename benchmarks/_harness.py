"""Shared timing harness for the benchmark scripts.

Every script compares its variants against a baseline measured in the same process and run:

- the environment is pinned and printed: glibc's allocator thresholds (a fresh allocation above
  32 MiB otherwise costs ~10× a DRAM write in page faults, which distorts large-tensor timings by
  1.4–4.6×), torch's intra-op threads, torch version and CPU;
- each variant is called ``warmup`` times, then the variants run round-robin ``repeats`` times
  (so load drift on a shared machine hits all of them alike) and the medians are compared;
- ``--quick`` runs tiny sizes once, for CI: it checks that every path runs and agrees with its
  baseline, and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "68719476736",
    "MALLOC_TOP_PAD_": "1073741824",
}
"""glibc settings that keep large buffers in the heap (no mmap/munmap and page faults per tensor)."""


def parse_args(description: str, argv: Sequence[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """Parse the common options, pin the environment (re-exec with tuned malloc) and print it.

    Options: ``--quick`` (tiny sizes, one repeat, no re-exec), ``--repeats``, ``--warmup``,
    ``--threads`` (default: all cores), ``--default-malloc`` (measure glibc's defaults instead).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for CI; no timing claims")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per variant first")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's default allocator thresholds (slower on large tensors)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if not args.quick and not args.default_malloc and argv is None:
        pin_malloc()
    torch.set_num_threads(1 if args.quick else args.threads)
    print(environment())
    return args


def pin_malloc() -> None:
    """Re-execute this script with :data:`TUNED_MALLOC` in the environment unless it is already set.

    glibc reads these variables at start-up, so setting them from Python has no effect: the
    process replaces itself (``os.execve``) with the same interpreter and arguments.
    """
    if all(os.environ.get(k) == v for k, v in TUNED_MALLOC.items()):
        return
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **TUNED_MALLOC})


def environment() -> str:
    """One line per fact that changes timings: torch, threads, allocator, CPU, load."""
    malloc = ", ".join(f"{k}={os.environ.get(k, 'default')}" for k in TUNED_MALLOC)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("n/a",)
    threads = f"threads {torch.get_num_threads()} of {os.cpu_count()} cores"
    return (f"# torch {torch.__version__}, {threads}, {cpu}\n"
            f"# malloc: {malloc}\n"
            f"# load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in load)}")


@dataclass
class Timings:
    """Per-variant samples in seconds; ``median`` of each."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def measure(variants: Mapping[str, Callable[[], object]], *, repeats: int, warmup: int = 1) -> Timings:
    """Time each variant: ``warmup`` untimed calls each, then ``repeats`` round-robin rounds."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    timings = Timings({name: [] for name in variants})
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            timings.samples[name].append(time.perf_counter() - start)
    return timings


@dataclass
class Row:
    """One line of a results table: a variant's median against the baseline and a bound."""

    subject: str
    variant: str
    seconds: float
    baseline: float
    bound: float | None = None
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.baseline / self.seconds

    def cells(self) -> list[str]:
        bound = "" if self.bound is None else f"{self.bound * 1e3:.1f}"
        over = "" if self.bound is None else f"{self.seconds / self.bound:.2f}×"
        return [self.subject, self.variant, f"{self.baseline * 1e3:.1f}", f"{self.seconds * 1e3:.1f}",
                f"{self.speedup:.2f}×", bound, over, self.note]


HEADER = ["subject", "variant", "baseline ms", "ours ms", "speed-up", "bound ms", "ours/bound", "note"]


def print_table(rows: Sequence[Row]) -> None:
    """Print rows as a Markdown table (medians in ms; speed-up = baseline / ours)."""
    lines = [HEADER, ["---"] * len(HEADER)] + [r.cells() for r in rows]
    for line in lines:
        print("| " + " | ".join(line) + " |")


def rows_for(subject: str, timings: Timings, baseline: str, *, bounds: Mapping[str, float] | None = None,
             notes: Mapping[str, str] | None = None, skip: Sequence[str] = ()) -> list[Row]:
    """Rows for every variant but the baseline (and ``skip``), against ``baseline``'s median."""
    bounds, notes = bounds or {}, notes or {}
    base = timings.median(baseline)
    return [Row(subject, name, timings.median(name), base, bounds.get(name), notes.get(name, ""))
            for name in timings.samples if name != baseline and name not in skip]


def target(label: str, value: float, goal: float, *, higher_is_better: bool = True) -> str:
    """A line saying whether a measured ratio meets its target."""
    ok = value >= goal if higher_is_better else value <= goal
    sign = "≥" if higher_is_better else "≤"
    return f"target {label}: {value:.2f} ({sign} {goal}) {'met' if ok else 'MISSED'}"


def max_abs_diff(a: Tensor, b: Tensor) -> float:
    """Largest absolute difference, in float64."""
    return (a.detach().double() - b.detach().double()).abs().max().item()


def check_close(label: str, got: Tensor, expected: Tensor, atol: float) -> float:
    """Print and assert ``max |got − expected| <= atol`` (correctness is asserted even in quick mode)."""
    diff = max_abs_diff(got, expected)
    print(f"# check {label}: max |diff| = {diff:.2e} (tolerance {atol:.0e})")
    if not diff <= atol or math.isnan(diff):
        raise AssertionError(f"{label}: outputs differ by {diff:.3e} > {atol:.0e}")
    return diff


def scene_labels(n: int, size: int, classes: int, *, seed: int = 0, objects: int = 40) -> Tensor:
    """Deterministic scene-like label maps ``(n, size, size)``: a stand-in for ADE20K layouts.

    Each map has wavy horizontal bands (wall, floor, ceiling) and ``objects`` ellipses and rotated
    rectangles of sizes from 1% to 20% of the image, drawn at twice the size and nearest-downsampled
    (jagged boundaries, as in resized dataset maps). Real ADE20K maps have 10–40 segments.
    """
    g = torch.Generator().manual_seed(seed)
    side = 2 * size
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")

    def rand() -> float:
        return torch.rand((), generator=g).item()

    def label() -> int:
        return int(torch.randint(classes, (), generator=g))

    maps = []
    for _ in range(n):
        lab = torch.full((side, side), label())
        for _band in range(3):
            y0, amp, freq, phase = rand() * side, rand() * side * 0.05, 1 + rand() * 4, rand() * 6
            lab[yy > y0 + amp * torch.sin(xx / side * 2 * math.pi * freq + phase)] = label()
        for _obj in range(objects):
            cy, cx, rad, ang, aspect = rand() * side, rand() * side, side * (0.01 + 0.2 * rand() ** 2), \
                rand() * math.pi, 0.3 + rand() * 1.4
            u = (xx - cx) * math.cos(ang) + (yy - cy) * math.sin(ang)
            v = -(xx - cx) * math.sin(ang) + (yy - cy) * math.cos(ang)
            if rand() < 0.5:
                mask = (u / rad) ** 2 + (v / (rad * aspect)) ** 2 <= 1
            else:
                mask = (u.abs() <= rad) & (v.abs() <= rad * aspect)
            lab[mask] = label()
        maps.append(lab)
    ids = torch.stack(maps)[:, None].float()
    return torch.nn.functional.interpolate(ids, size=(size, size), mode="nearest")[:, 0].long()


def conv_throughput(channels: int, size: int, *, repeats: int, channels_last: bool = False,
                    dtype: torch.dtype = torch.float32) -> float:
    """Measured FLOP/s of one 3×3 ``channels → channels`` convolution forward on ``(1, C, size, size)``.

    The machine's conv throughput for the compute bounds (2·C_in·C_out·9·H·W FLOPs per call): the
    best of ``repeats`` calls, since a bound is what the machine can reach.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(memory_format=fmt)
    x = torch.randn(1, channels, size, size).contiguous(memory_format=fmt)
    flops = 2 * channels * channels * 9 * size * size

    def run() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            conv(x)

    return flops / min(measure({"conv": run}, repeats=repeats, warmup=2).samples["conv"])


def conv2d_flops(module: torch.nn.Module, example: Callable[[], object]) -> int:
    """Count the multiply-add FLOPs (2 per MAC) of every ``nn.Conv2d``/``nn.Linear`` in ``module``'s forward.

    Runs ``example()`` once with forward hooks that read the output sizes.
    """
    total = 0

    def hook(mod: torch.nn.Module, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            kh, kw = mod.kernel_size
            total += 2 * out.numel() * (mod.in_channels // mod.groups) * kh * kw
        else:
            total += 2 * out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            example()
    finally:
        for h in handles:
            h.remove()
    return total


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]


def _heap_in_use() -> Callable[[], int] | None:
    """glibc's bytes in use (all arenas, heap + mmapped chunks), or None off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


def peak_heap_growth(fn: Callable[[], object]) -> float | None:
    """Peak growth of the allocated heap (bytes) while ``fn`` runs, sampled after every aten op.

    Counts live allocations (what the tensors need), not RSS, so allocator fragmentation and
    glibc's padding do not blur the comparison; the backward runs in the same thread on CPU and is
    included. ``None`` where glibc's ``mallinfo2`` is unavailable.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    in_use = _heap_in_use()
    if in_use is None:
        return None

    class Sampler(TorchDispatchMode):
        peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.peak = max(self.peak, in_use())
            return out

    start = in_use()
    with Sampler() as sampler:
        fn()
    return max(sampler.peak - start, 0)
