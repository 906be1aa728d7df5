"""Export trained networks to ONNX, TorchScript, ``torch.export`` and safetensors, and run them.

The journey::

    python infer.py export --checkpoint run.ckpt --task spade --format onnx --out spade.onnx
    python infer.py spade --onnx spade.onnx --labels masks/ --out out/     # onnxruntime, no training code

- :mod:`~models.app.export.prepare`: the inference form of a network (EMA generator, eval mode,
  spectral/weight norm folded into plain weights, SyncBatchNorm → BatchNorm).
- :mod:`~models.app.export.graphs`: what is exported, with fixed tensor inputs and dynamic sizes
  (:class:`~models.app.export.formats.GraphSpec`): every condnorm layer, the SPADE/CLADE generator
  (and its VAE encoder), the RAIN (SEAN) generator (noise maps as inputs) and its style
  encoder, the AdaIN/AdaCoN style-transfer network (and its split form with precomputed style
  statistics).
- :mod:`~models.app.export.formats`: the writers and readers; ONNX through
  ``torch.onnx.export(dynamo=True)`` by default (see there for why), or the tracing exporter.
- :mod:`~models.app.export.architecture`: safetensors weights plus a JSON description that rebuilds
  the network without pickle.
- :mod:`~models.app.export.runtime`: onnxruntime runners called like the PyTorch networks, so
  ``infer.py`` shares one pre/post-processing path between the backends.
- :mod:`~models.app.export.verify`: run an exported file against eager PyTorch at new sizes.
"""

from .architecture import describe, load_exported_safetensors, save_exported_safetensors
from .formats import GraphSpec, export, export_onnx, export_program, export_torchscript
from .graphs import (
    layer_spec,
    rain_encoder_spec,
    rain_generator_spec,
    spade_encoder_spec,
    spade_generator_spec,
    style_code_spec,
    style_transfer_spec,
)
from .prepare import fold_reparameterizations, prepare_for_export
from .runtime import OnnxGenerator, OnnxRainGenerator, OnnxSession, OnnxStyleTransfer
from .verify import parity

__all__ = [
    "GraphSpec",
    "OnnxGenerator",
    "OnnxRainGenerator",
    "OnnxSession",
    "OnnxStyleTransfer",
    "describe",
    "export",
    "export_onnx",
    "export_program",
    "export_torchscript",
    "fold_reparameterizations",
    "layer_spec",
    "load_exported_safetensors",
    "parity",
    "prepare_for_export",
    "rain_encoder_spec",
    "rain_generator_spec",
    "save_exported_safetensors",
    "spade_encoder_spec",
    "spade_generator_spec",
    "style_code_spec",
    "style_transfer_spec",
]
