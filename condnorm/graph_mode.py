"""Which code path a layer takes: eager, or a graph being traced, compiled or exported.

Several layers have an eager fast path whose shapes depend on the data (SPADE's per-window
path, the fused AdaIN autograd functions, spectral norm on the output) and a static-shape path
that graph capture can follow. Every such decision asks one of these predicates, so the rule
for each capture mode is written once.

==============================  ===========================================================
predicate                       true while
==============================  ===========================================================
:func:`capturing_graph`         ``torch.jit.trace`` or ``torch.compile`` / ``torch.export``
:func:`exporting_program`       ``torch.jit.trace`` or ``torch.export`` (no Python autograd
                                functions, no forward hooks in the graph)
:func:`exporting_onnx`          ``torch.onnx.export`` (either exporter)
:func:`tracing_onnx`            the TorchScript-tracing ONNX exporter (no dynamic ``unfold``)
==============================  ===========================================================

Example:
    >>> capturing_graph(), exporting_program(), exporting_onnx(), tracing_onnx()
    (False, False, False, False)
"""

from __future__ import annotations

import torch

__all__ = ["capturing_graph", "exporting_onnx", "exporting_program", "tracing_onnx"]


def capturing_graph() -> bool:
    """True while TorchScript tracing, ``torch.compile`` or ``torch.export`` runs."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def exporting_program() -> bool:
    """True while TorchScript traces or ``torch.export`` exports: plain operators only."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def exporting_onnx() -> bool:
    """True while ``torch.onnx.export`` runs (the dynamo or the tracing exporter)."""
    return torch.onnx.is_in_onnx_export()


def tracing_onnx() -> bool:
    """True while the legacy TorchScript-tracing ONNX exporter runs."""
    return torch.onnx.is_in_onnx_export() and torch.jit.is_tracing()
