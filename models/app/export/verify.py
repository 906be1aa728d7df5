"""Check an export: run the written file and compare it with the eager network, at new sizes too.

:func:`parity` exports a :class:`~models.app.export.formats.GraphSpec` in one format, runs the file
(onnxruntime, ``torch.jit.load`` or ``torch.export.load``) on the example inputs and on inputs
whose every dynamic dimension has changed (:func:`resized_inputs`), and returns the largest
absolute difference from the eager network. The tests and ``benchmarks/export_parity.py`` use it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import Tensor

from .formats import GraphSpec, export, load_program, load_torchscript
from .runtime import OnnxSession

__all__ = ["SUFFIXES", "parity", "resized_inputs", "run_exported"]

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "export": ".pt2"}


def _as_list(out: Tensor | tuple[Tensor, ...] | list[Tensor]) -> list[Tensor]:
    return [out] if isinstance(out, Tensor) else list(out)


def run_exported(path: str | Path, fmt: str, inputs: tuple[Tensor, ...]) -> list[Tensor]:
    """Run an exported file on ``inputs`` (CPU) and return its outputs as a list."""
    if fmt == "onnx":
        return OnnxSession(path, providers=["CPUExecutionProvider"])(*inputs)
    module = load_torchscript(path)[0] if fmt == "torchscript" else load_program(path)[0]
    with torch.no_grad():
        return _as_list(module(*inputs))


def _is_binary(t: Tensor) -> bool:
    return t.is_floating_point() and bool(((t == 0) | (t == 1)).all())


def _is_one_hot(t: Tensor) -> bool:
    return t.dim() == 4 and _is_binary(t) and bool((t.sum(1) == 1).all())


def resized_inputs(spec: GraphSpec, *, seed: int = 0) -> tuple[Tensor, ...]:
    """Random inputs like ``spec.inputs`` with every dynamic dimension changed.

    The batch grows by one and each spatial symbol by its own amount (3, 5, 7, …), so inputs
    whose sizes must agree (``H`` of ``x`` and of its noise map) still agree. Inputs keep their
    kind: one-hot maps stay one-hot, other 0/1 maps (edges) stay 0/1, integer inputs take ids
    from the example's range, other floating inputs are drawn from N(0, 1).
    """
    g = torch.Generator().manual_seed(seed)
    grow: dict[str, int] = {}
    out = []
    for name, t in zip(spec.input_names, spec.inputs):
        shape = list(t.shape)
        for d, sym in spec.dynamic.get(name, {}).items():
            shape[d] += grow.setdefault(sym, 1 if sym == "N" else 3 + 2 * len(grow))
        if _is_one_hot(t):
            ids = torch.randint(shape[1], (shape[0], *shape[2:]), generator=g)
            out.append(torch.nn.functional.one_hot(ids, shape[1]).movedim(-1, 1).to(t.dtype))
        elif _is_binary(t):
            out.append(torch.randint(2, shape, generator=g).to(t.dtype))
        elif t.is_floating_point():
            out.append(torch.randn(shape, generator=g, dtype=t.dtype))
        else:
            out.append(torch.randint(int(t.min()), int(t.max()) + 1, shape, generator=g, dtype=t.dtype))
    return tuple(out)


def parity(spec: GraphSpec, fmt: str, *, directory: str | Path | None = None, dynamo: bool = True,
           other_inputs: tuple[Tensor, ...] | None = None) -> float:
    """Largest absolute difference between the exported file and the eager network.

    Args:
        spec: what to export; ``spec.module`` is the eager reference.
        fmt: ``"onnx"``, ``"torchscript"`` or ``"export"``.
        directory: where to write the file (a temporary folder when None).
        dynamo: ONNX exporter (see :func:`~models.app.export.formats.onnx_bytes`).
        other_inputs: the second set of inputs; default :func:`resized_inputs`. Pass the
            example inputs again for a graph without dynamic dimensions.

    Returns:
        The maximum over both input sets and every output.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(directory or tmp) / f"model{SUFFIXES[fmt]}"
        export(spec, path, fmt, **({"dynamo": dynamo} if fmt == "onnx" else {}))
        worst = 0.0
        for inputs in (spec.inputs, other_inputs if other_inputs is not None else resized_inputs(spec)):
            with torch.no_grad():
                expected = _as_list(spec.module(*inputs))
            got = run_exported(path, fmt, inputs)
            if [tuple(e.shape) for e in expected] != [tuple(o.shape) for o in got]:
                raise AssertionError(f"{fmt}: output shapes {[tuple(o.shape) for o in got]}, expected "
                                     f"{[tuple(e.shape) for e in expected]}")
            worst = max(worst, *((o - e).abs().max().item() for o, e in zip(got, expected)))
        return worst
