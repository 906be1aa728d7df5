"""Every make_norm kind, forward + backward in training mode, against batch norm on the same input.

One row per normalizer of ``condnorm.NORM_KINDS`` (``none`` excluded): its median time over
round-robin rounds relative to ``batch`` (``nn.BatchNorm2d(affine=False)``, the baseline),
measured in one run on one input (default ``(8, 64, 64, 64)``). Kinds that need context get it:
a random 0/1 ``mask`` (region), alternating ``domain`` ids (split, domain_specific), the
previous layer's statistics (kalman). Normalizers keep their default options (local_context:
7×7 window, cosine: 1×1 filters).

    python benchmarks/normalizers.py
    python benchmarks/normalizers.py --quick    # CI smoke: tiny input, one round, no timing claims
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import Row, measure, parse_args, print_table, rows_for
from condnorm import NORM_KINDS, make_norm

SHAPE = (8, 64, 64, 64)
QUICK_SHAPE = (2, 8, 8, 8)


def context(kind: str, x: Tensor) -> dict[str, Tensor]:
    """The extra input a kind needs, for ``x``."""
    g = torch.Generator().manual_seed(1)
    if kind == "region":
        return {"mask": (torch.rand(x.shape[0], 1, *x.shape[2:], generator=g) > 0.5).to(x.dtype)}
    if kind in ("split", "domain_specific"):
        return {"domain": torch.arange(x.shape[0]) % 2}
    if kind == "kalman":
        return {"prev_mean": torch.randn(x.shape[1], generator=g), "prev_var": torch.rand(x.shape[1]) + 0.5}
    return {}


def step(kind: str, x: Tensor, grad: Tensor) -> Callable[[], None]:
    """One training-mode forward + backward of ``kind`` on ``x``."""
    norm = make_norm(kind, x.shape[1]).train()
    ctx = context(kind, x)
    x = x.clone().requires_grad_()

    def run() -> None:
        out = norm(x, **ctx)
        out.backward(grad)
        if not math.isfinite(out[0, 0, 0, 0].item()):
            raise AssertionError(f"{kind}: non-finite output")

    return run


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(__doc__.splitlines()[0], argv)
    shape = QUICK_SHAPE if args.quick else SHAPE
    repeats = args.repeats or (1 if args.quick else 7)
    g = torch.Generator().manual_seed(0)
    x, grad = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    kinds = [k for k in NORM_KINDS if k != "none"]
    timings = measure({kind: step(kind, x, grad) for kind in kinds}, repeats=repeats, warmup=args.warmup)
    label = "x".join(map(str, shape))
    rows = rows_for(f"normalizer fwd+bwd {label}", timings, "batch")
    print_table(rows)
    print("# speed-up = batch / kind (below 1: slower than batch norm)")
    return rows


if __name__ == "__main__":
    main()
