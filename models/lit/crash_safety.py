"""Crash-safe training: atomic, weights-only checkpoints, exact resume, a stop on non-finite losses.

Every config in ``configs/`` sets

.. code-block:: yaml

    trainer:
      plugins:
        - class_path: models.lit.crash_safety.AtomicCheckpointIO
      callbacks:
        - class_path: models.lit.crash_safety.RNGState

- :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in the same folder,
  ``fsync``-s it and renames it over the target, so a kill or power cut during a write leaves
  the previous checkpoint intact; it reads checkpoints with ``torch.load(weights_only=True)``
  (:func:`models.weights.read_weights`), so resuming from a file cannot run code from it.
- :class:`RNGState` stores the random generators' states in each checkpoint and restores them
  when training resumes from one, so a run resumed from an epoch-end checkpoint draws the same
  shuffles, crops and noise as an uninterrupted one (bit-identical on the CPU with
  ``deterministic: true``).
- :func:`stop_if_not_finite` stops training with a ``FloatingPointError`` naming the loss and
  the step before a NaN/Inf reaches the weights; no checkpoint is written after it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch import Tensor

from models.weights import atomic_save, read_weights

__all__ = ["AtomicCheckpointIO", "RNGState", "stop_if_not_finite"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O with atomic local writes and weights-only reads.

    Local paths are written by :func:`models.weights.atomic_save` (temporary file in the same
    folder, ``fsync``, ``os.replace``); remote ones (``s3://`` …) go through Lightning's writer.
    Reads use :func:`models.weights.read_weights` unless the caller passes
    ``weights_only=False`` explicitly (``train.py`` passes ``True`` by default).

    Example:
        >>> import tempfile, os
        >>> io = AtomicCheckpointIO()
        >>> path = os.path.join(tempfile.mkdtemp(), "last.ckpt")
        >>> io.save_checkpoint({"global_step": 4}, path)
        >>> io.load_checkpoint(path)
        {'global_step': 4}
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (local files)."""
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Callable | Any | None = "cpu",
                        weights_only: bool | None = None) -> dict[str, Any]:
        """Read a checkpoint without running code from it (unless ``weights_only=False`` is passed)."""
        if weights_only is False or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        return read_weights(path, map_location=map_location)


def _numpy_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


class RNGState(pl.Callback):
    """Keep Python's, NumPy's and torch's (CPU and CUDA) random states in checkpoints; restore on resume.

    Lightning checkpoints hold the weights, optimizers and loop counters but not the random
    generators, so a resumed run would shuffle, crop and sample differently from the run it
    continues. This callback saves the generators' states with every checkpoint and puts them
    back when Lightning restores the callbacks from one, before the training loop creates its
    first data iterator (the sanity check in between runs with isolated random state). Under
    DDP every rank restores rank 0's saved state, as every rank starts from the same
    ``seed_everything`` seed.

    Example:
        >>> cb = RNGState()
        >>> state = cb.state_dict()
        >>> first = torch.rand(3)
        >>> cb.load_state_dict(state)
        >>> torch.equal(torch.rand(3), first)
        True
    """

    def state_dict(self) -> dict[str, Any]:
        """The current states (called when a checkpoint is written)."""
        return {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the states saved in the checkpoint training resumes from."""
        random.setstate(state_dict["python"])
        np_state = state_dict["numpy"]
        np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                             np_state["has_gauss"], np_state["cached_gaussian"]))
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict["cuda"]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def stop_if_not_finite(losses: Mapping[str, Tensor], step: int) -> None:
    """Raise ``FloatingPointError`` naming the first NaN/Inf loss (one host sync for all of them).

    Call it before ``backward``: the weights and the last checkpoint are still good.

    Example:
        >>> stop_if_not_finite({"G/gan": torch.tensor(1.0), "G/vgg": torch.tensor(float("nan"))}, 7)
        Traceback (most recent call last):
        ...
        FloatingPointError: G/vgg became nan at step 7; training stopped before the update (the last checkpoint is intact). Lower the learning rates, or train in precision 32 instead of 16
    """  # noqa: E501
    values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    index = int((~finite).nonzero()[0])
    name = list(losses)[index]
    raise FloatingPointError(f"{name} became {float(values[index])} at step {step}; training stopped before "
                             "the update (the last checkpoint is intact). Lower the learning rates, or "
                             "train in precision 32 instead of 16")
