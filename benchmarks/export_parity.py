"""Parity table: every condnorm layer and generator × export format → max |exported − eager|.

Each entry exports the tiny network of ``tests/layer_cases.py`` / ``tests/export_cases.py``,
runs the file (onnxruntime CPU, ``torch.jit.load``, ``torch.export.load``) on the example
inputs and on inputs with every dynamic dimension changed, and reports the largest absolute
difference from eager PyTorch (the tests assert ≤ 1e-4 for each).

    python benchmarks/export_parity.py            # everything (a few minutes on 2 cores)
    python benchmarks/export_parity.py --quick    # layers only, ONNX formats only
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.app.export.graphs import layer_spec
from models.app.export.verify import parity
from tests.condnorm.layer_cases import CASES
from tests.models.app.export_cases import GENERATOR_SPECS, STYLE_SPECS

COLUMNS = {  # column → (format, dynamo)
    "onnx (dynamo)": ("onnx", True),
    "onnx (tracing)": ("onnx", False),
    "torchscript": ("torchscript", True),
    "torch.export": ("export", True),
}


def _cell(spec_fn, fmt: str, dynamo: bool) -> str:
    try:
        return f"{parity(spec_fn(), fmt, dynamo=dynamo):.1e}"
    except Exception as err:  # a failing export is a table entry, not a crash
        return f"fails ({type(err).__name__})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="layers only, ONNX columns only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    rows = {c.name: (lambda c=c: layer_spec(c.build(), *c.inputs())) for c in CASES}
    if not args.quick:
        rows.update(GENERATOR_SPECS)
        rows.update(STYLE_SPECS)
    columns = {k: v for k, v in COLUMNS.items() if not args.quick or v[0] == "onnx"}
    print(f"torch {torch.__version__}; max |exported - eager| over the example and resized inputs")
    print("| network | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    start = time.perf_counter()
    for name, spec_fn in rows.items():
        torch.manual_seed(0)
        cells = [_cell(spec_fn, fmt, dynamo) for fmt, dynamo in columns.values()]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
