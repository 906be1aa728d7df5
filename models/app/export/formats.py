"""Write a prepared network as ONNX, TorchScript or a ``torch.export`` program, and read them back.

Every exporter takes a :class:`GraphSpec`: the network (already passed through
:func:`~models.app.export.prepare.prepare_for_export`), example inputs, input/output names, which
dimensions are dynamic, and a JSON-able ``metadata`` dict that travels inside the file (ONNX
``metadata_props["condnorm"]``, a ``condnorm.json`` extra file in TorchScript and ``.pt2``
archives), so a runtime can rebuild the pre- and post-processing without the training code.

ONNX exporters. ``torch.onnx.export`` has two: the ``torch.export``-based one (``dynamo=True``)
and the TorchScript-tracing one (``dynamo=False``). Both export every network here with the
same parity (``benchmarks/export_parity.py``); onnxruntime runs the AdaIN graphs equally fast
and the dynamo SPADE graph a little faster (ADE20K 256²: 0.88–0.98× vs 0.96–1.08× eager
PyTorch over three runs, ``benchmarks/export_latency.py``). **The default is ``dynamo=True``** because

- it is PyTorch's maintained, default exporter; the tracing one is deprecated since 2.9;
- it traces symbolically: shape arithmetic stays symbolic and a dynamic size the code fixes
  raises (except from size-1 examples, hence batch-2 examples), where tracing records Python
  branches on sizes at their example values and cannot ``unfold`` a dynamic size (the label
  windows use slices under it);
- its SPADE generator graph is the faster one (above).

Its cost is export time: 1–6 s per layer, ~20 s for a tiny SPADE generator (torch.export
reasons about the data-dependent sizes of SPADE's per-window path), 9–18 s for the AdaIN
network on 2 shared cores, against 0.05–8 s for tracing (the 96 M-parameter ADE20K generator:
36 s vs 16 s). Pass ``dynamo=False`` for fast iteration.

TorchScript (``torch.jit.trace``/``save``/``load``) warns as deprecated in torch 2.14; it is
kept for LibTorch (C++) deployment. ``torch.export`` programs (``.pt2``) are its successor.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "FORMATS",
    "METADATA_KEY",
    "GraphSpec",
    "export",
    "export_onnx",
    "export_program",
    "export_torchscript",
    "load_program",
    "load_torchscript",
    "onnx_bytes",
]

FORMATS = ("onnx", "torchscript", "export")
"""Program formats (safetensors weights are written by :mod:`models.app.export.architecture`)."""
METADATA_KEY = "condnorm"
"""Key of the JSON metadata: ONNX ``metadata_props`` key, ``{key}.json`` extra file elsewhere."""
DEFAULT_OPSET = 18


@dataclass
class GraphSpec:
    """A network with everything an exporter needs to know about its call.

    Attributes:
        module: the prepared network; ``module(*inputs)`` returns a tensor or a tuple of them.
        inputs: example inputs (their sizes are the export-time sizes).
        input_names: one name per input.
        output_names: one name per output.
        dynamic: per input name, ``{dim: symbol}`` for the dimensions that may change; the symbol
            names the dimension in the ONNX file (``"N"``, ``"H"``). Which dynamic sizes must be
            equal (the batch of two inputs) is inferred by ``torch.export``; a dimension the
            code fixes to its example value fails the export.
        output_dynamic: the same for the outputs (only the tracing ONNX exporter needs it).
        metadata: JSON-able description stored in the file (task, label layout, sizes, …).
    """

    module: nn.Module
    inputs: tuple[Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    output_dynamic: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A wrapper is born in training mode, and the tracing ONNX exporter restores the mode it
        # found on the whole tree afterwards: keep everything in eval mode.
        self.module.eval()
        if len(self.inputs) != len(self.input_names):
            raise ValueError(f"GraphSpec: {len(self.inputs)} example input(s) but {len(self.input_names)} "
                             f"name(s) {list(self.input_names)}")
        unknown = set(self.dynamic) - set(self.input_names)
        if unknown:
            raise ValueError(f"GraphSpec: dynamic dimensions given for unknown input(s) {sorted(unknown)}; "
                             f"inputs are {list(self.input_names)}")

    def dynamic_shapes(self) -> tuple[dict[int, Any], ...]:
        """``dynamic_shapes`` for :func:`torch.export.export`, one entry per input in order.

        Every listed dimension is ``Dim.DYNAMIC``: ``torch.export`` infers equalities and
        ranges itself, where named ``Dim`` objects fail on guards its solver cannot prove
        (the ceil-mode pools of the VGG encoder, ``2·⌊(H − 1)/2⌋ < H``).
        """
        shapes = tuple(dict.fromkeys(self.dynamic.get(name, {}), torch.export.Dim.DYNAMIC)
                       for name in self.input_names)
        params = list(inspect.signature(self.module.forward).parameters.values())
        kinds = [p.kind for p in params]
        if inspect.Parameter.VAR_POSITIONAL in kinds:  # forward(a, *rest): rest is one tuple argument
            fixed = kinds.index(inspect.Parameter.VAR_POSITIONAL)
            if len(shapes) > fixed:  # (an empty rest is no argument at all)
                shapes = (*shapes[:fixed], shapes[fixed:])
        return shapes

    def metadata_json(self) -> str:
        """The metadata plus the input/output names, as JSON."""
        return json.dumps({**self.metadata, "inputs": list(self.input_names),
                           "outputs": list(self.output_names)}, sort_keys=True)


class _Positional(nn.Module):
    """Call a network with exactly the given tensors.

    The tracing exporter appends the defaults of ``forward``'s remaining parameters to the
    inputs (AdaIN's ``alpha=1.0`` became a graph input); a ``*inputs`` signature has none. Build
    it in eval mode: the exporter restores the wrapper's mode on the whole tree afterwards.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, *inputs: Tensor) -> Any:
        return self.network(*inputs)


def _exported_program(spec: GraphSpec) -> torch.export.ExportedProgram:
    return torch.export.export(spec.module, spec.inputs, dynamic_shapes=spec.dynamic_shapes())


def _name_axes(program: torch.onnx.ONNXProgram, spec: GraphSpec) -> None:
    """Give the exporter's symbolic sizes (``s0``, ``s1``, …) the spec's names."""
    mapping: dict[str, str] = {}
    for value in program.model.graph.inputs:
        for d, sym in spec.dynamic.get(value.name, {}).items():
            old = value.shape[d]
            if not isinstance(old, int) and old.value is not None:
                mapping.setdefault(old.value, sym)
    program.rename_axes(mapping)


def onnx_bytes(spec: GraphSpec, *, dynamo: bool = True, opset: int = DEFAULT_OPSET) -> bytes:
    """Export ``spec`` to an in-memory ONNX model (with its metadata) and return its bytes.

    Args:
        spec: the network and its call.
        dynamo: ``torch.export``-based exporter (default) or the TorchScript-tracing one.
        opset: ONNX opset version.

    Returns:
        The serialised ``ModelProto``, weights included (single file, < 2 GiB).
    """
    import onnx

    with torch.no_grad(), warnings.catch_warnings():
        # The choice of exporter is the caller's (dynamo=False asks for the legacy one knowingly).
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        if dynamo:
            # The module itself, not a torch.export program: layers see is_in_onnx_export() while
            # traced (AdaCoN picks its ONNX-friendly form).
            program = torch.onnx.export(spec.module, spec.inputs, dynamo=True, opset_version=opset,
                                        dynamic_shapes=spec.dynamic_shapes(),
                                        input_names=list(spec.input_names),
                                        output_names=list(spec.output_names), verbose=False)
            _name_axes(program, spec)
            proto = program.model_proto
        else:
            buffer = io.BytesIO()
            # This exporter prints the whole TorchScript graph when it fails; its exception says enough.
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(_Positional(spec.module).eval(), spec.inputs, buffer, dynamo=False,
                                  opset_version=opset, verbose=False, input_names=list(spec.input_names),
                                  output_names=list(spec.output_names),
                                  dynamic_axes={**spec.dynamic, **spec.output_dynamic})
            proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {METADATA_KEY: spec.metadata_json()})
    return proto.SerializeToString()


def export_onnx(spec: GraphSpec, path: str | Path, *, dynamo: bool = True,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write ``spec`` as one ``.onnx`` file (see :func:`onnx_bytes`); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_bytes(spec, dynamo=dynamo, opset=opset))
    return path


def export_torchscript(spec: GraphSpec, path: str | Path) -> Path:
    """Trace ``spec`` with :func:`torch.jit.trace` and save it (loadable from C++ with ``torch::jit::load``).

    Sizes read from tensors are recorded as operations, so the batch and the spatial sizes stay
    dynamic; functions marked ``torch.jit.script_if_tracing`` (AdaCoN's batched dynamic conv)
    are scripted, so their size-dependent arguments stay dynamic too. Python branches on sizes
    are frozen at the example's values (see the notes on segmap sizes in
    :func:`~models.app.export.graphs.layer_spec`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(spec.module, spec.inputs, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": spec.metadata_json()})
    return path


def export_program(spec: GraphSpec, path: str | Path) -> Path:
    """Save a :func:`torch.export.export` program (``.pt2``) with the spec's dynamic dimensions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        program = _exported_program(spec)
    torch.export.save(program, path, extra_files={f"{METADATA_KEY}.json": spec.metadata_json()})
    return path


def export(spec: GraphSpec, path: str | Path, fmt: str, **onnx_options: Any) -> Path:
    """Write ``spec`` in format ``fmt`` (one of :data:`FORMATS`); ONNX options pass through."""
    if fmt == "onnx":
        return export_onnx(spec, path, **onnx_options)
    if onnx_options:
        raise ValueError(f"options {sorted(onnx_options)} apply to the onnx format only")
    if fmt == "torchscript":
        return export_torchscript(spec, path)
    if fmt == "export":
        return export_program(spec, path)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)} (or safetensors)")


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load a TorchScript file written by :func:`export_torchscript`: ``(module, metadata)``."""
    extra = {f"{METADATA_KEY}.json": ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module, json.loads(extra[f"{METADATA_KEY}.json"] or "{}")


def load_program(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a ``.pt2`` written by :func:`export_program`: ``(callable module, metadata)``."""
    extra = {f"{METADATA_KEY}.json": ""}
    program = torch.export.load(path, extra_files=extra)
    return program.module(), json.loads(extra[f"{METADATA_KEY}.json"] or "{}")
