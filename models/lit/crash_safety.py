"""Crash-safe training: atomic, finite, weights-only checkpoints, exact resume, no lost work.

Every config in ``configs/`` sets

.. code-block:: yaml

    trainer:
      plugins:
        - class_path: models.lit.crash_safety.AtomicCheckpointIO
      callbacks:
        - class_path: models.lit.crash_safety.RNGState
        - class_path: models.lit.crash_safety.InterruptCheckpoint
        - class_path: models.lit.crash_safety.FiniteModelCheckpoint  # the epoch / best checkpoints
        - class_path: models.lit.crash_safety.FiniteModelCheckpoint  # last.ckpt every 25 minutes
          init_args: {train_time_interval: "0:25:00", save_top_k: 0, save_last: true}

- :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in the same folder,
  ``fsync``-s it and renames it over the target, so a kill or power cut during a write leaves
  the previous checkpoint intact; it refuses to write weights holding NaN/Inf
  (:class:`NonFiniteCheckpointError`, which stops training and keeps the previous file); it
  reads checkpoints with ``torch.load(weights_only=True)``
  (:func:`models.weights.read_weights`), so resuming from a file cannot run code from it.
- :class:`FiniteModelCheckpoint` is Lightning's ``ModelCheckpoint`` that never keeps a NaN/Inf
  monitored metric as a best checkpoint, and keeps ``train_time_interval`` for modules that step
  their own optimizers (the GANs), which Lightning's skips.
- :class:`InterruptCheckpoint` turns Ctrl-C and SIGTERM into: finish the batch, write
  ``last.ckpt``, exit with status 130 / 143.
- :class:`RNGState` stores the random generators' states in each checkpoint and restores them
  when training resumes from one, so a run resumed from an epoch-end checkpoint draws the same
  shuffles, crops and noise as an uninterrupted one (bit-identical on the CPU with
  ``deterministic: true``).
- :func:`stop_if_not_finite` stops training with a ``FloatingPointError`` naming the loss and
  the step before a NaN/Inf reaches the weights; no checkpoint is written after it.
"""

from __future__ import annotations

import functools
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from models.weights import atomic_save, non_finite_tensors, read_weights

__all__ = ["AtomicCheckpointIO", "FiniteModelCheckpoint", "InterruptCheckpoint", "NonFiniteCheckpointError",
           "RNGState", "require_finite_non_negative", "stop_if_not_finite"]


class NonFiniteCheckpointError(FloatingPointError):
    """A checkpoint whose weights hold NaN/Inf was not written; the previous file is kept."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O with atomic local writes and weights-only reads.

    Local paths are written by :func:`models.weights.atomic_save` (temporary file in the same
    folder, ``fsync``, ``os.replace``); remote ones (``s3://`` …) go through Lightning's writer.
    A checkpoint whose ``state_dict`` holds NaN/Inf weights is not written at all: the previous
    file stays and :class:`NonFiniteCheckpointError` stops training (under DDP only rank 0
    writes, so only it raises; the other ranks stop when its exit closes the process group).
    Reads use :func:`models.weights.read_weights` unless the caller passes ``weights_only=False``
    explicitly (``train.py`` passes ``True`` by default).

    Example:
        >>> import tempfile, os
        >>> io = AtomicCheckpointIO()
        >>> path = os.path.join(tempfile.mkdtemp(), "last.ckpt")
        >>> io.save_checkpoint({"global_step": 4}, path)
        >>> io.load_checkpoint(path)
        {'global_step': 4}
        >>> io.save_checkpoint({"global_step": 5, "state_dict": {"w": torch.tensor(float("nan"))}}, path)
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        models.lit.crash_safety.NonFiniteCheckpointError: ...last.ckpt: not written, the weights hold NaN/Inf (w); the checkpoints written before are kept and training stops — resume from the last good one with --ckpt_path and lower the learning rates, or train in precision 32 instead of 16
        >>> io.load_checkpoint(path)
        {'global_step': 4}
    """  # noqa: E501

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (local files); refuse non-finite weights."""
        bad = non_finite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise NonFiniteCheckpointError(
                f"{path}: not written, the weights hold NaN/Inf ({shown}); the checkpoints written before "
                "are kept and training stops — resume from the last good one with --ckpt_path and lower the "
                "learning rates, or train in precision 32 instead of 16")
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


class FiniteModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that never keeps a NaN/Inf best and saves on time under manual optimization.

    - Lightning ranks a NaN metric as the worst value but still saves it while fewer than
      ``save_top_k`` checkpoints exist, so the first validation of a diverged run became ``best``.
      Here a non-finite metric is skipped with a warning (and :class:`AtomicCheckpointIO` refuses
      non-finite weights anyway).
    - Lightning (2.6) checks only ``every_n_train_steps`` after a batch of a module that steps its
      own optimizers (``automatic_optimization = False``: the SPADE/OASIS GANs of
      :class:`~models.lit.mask_to_image.MaskToImageModule`), so their ``train_time_interval``
      checkpoint, the configs' "``last.ckpt`` every 25 minutes", was never written; and its
      epoch-end ``last.ckpt`` follows only a new best. Here the time trigger works for them too.

    Example:
        >>> cb = FiniteModelCheckpoint(monitor="val/l1", save_top_k=1)
        >>> cb.check_monitor_top_k(None, torch.tensor(float("nan")))
        False
    """

    def check_monitor_top_k(self, trainer: pl.Trainer, current: Tensor | None = None) -> bool:
        """Whether ``current`` enters the top k; never for NaN/Inf."""
        if current is not None and not bool(torch.isfinite(torch.as_tensor(current))):
            rank_zero_warn(f"{self.monitor} is {float(current)}: not kept as a best checkpoint")
            return False
        return super().check_monitor_top_k(trainer, current)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Lightning's triggers, then ``train_time_interval`` for a manually optimised module."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        interval, since = self._train_time_interval, self._last_time_checked
        if pl_module.automatic_optimization or interval is None or since is None:
            return
        now = time.monotonic()  # the clock Lightning set ``_last_time_checked`` with at the start
        due = trainer.strategy.broadcast(now - since >= interval.total_seconds())  # rank 0 decides for all
        if not due or self._should_skip_saving_checkpoint(trainer):
            return
        self._last_time_checked = now
        candidates = self._monitor_candidates(trainer)
        if self.monitor is None or self.monitor in candidates:  # a best needs its metric (validation)
            self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)


class InterruptCheckpoint(pl.Callback):
    """On Ctrl-C or SIGTERM, finish the current batch, write ``last.ckpt`` and exit non-zero.

    Without it Lightning stops at a SIGTERM with exit status 0 and at a Ctrl-C with status 1,
    and both lose the work since the last periodic or epoch checkpoint. With it:

    - SIGTERM (a scheduler's or ``kill``'s stop): Lightning finishes the batch and raises its
      ``SIGTERMException``; this callback writes the checkpoint and sets the exit status to 143.
    - The first Ctrl-C (SIGINT) does the same (status 130): the callback's handler asks Lightning
      for the same graceful stop instead of raising ``KeyboardInterrupt`` in the middle of a step.
      A second Ctrl-C stops at once, without a checkpoint (Lightning's status 1).

    The checkpoint goes through the Trainer (so through :class:`AtomicCheckpointIO`: atomic,
    never non-finite) to ``last.ckpt`` in the first checkpoint callback's folder (the Trainer's
    ``default_root_dir`` without one). Resume with ``--ckpt_path`` (mid-epoch: the step count and
    weights continue; the epoch's data order restarts).

    Example:
        >>> InterruptCheckpoint().exit_status(signal.SIGTERM)
        143
    """

    def __init__(self) -> None:
        super().__init__()
        self._signal: int | None = None
        self._previous_sigint: Any = None

    @staticmethod
    def exit_status(signum: int) -> int:
        """The shell convention: 128 + the signal number."""
        return 128 + int(signum)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Catch the first Ctrl-C of the training (signals can only be set from the main thread).

        Installed after Lightning's own signal handlers, whose snapshot Lightning restores when the
        fit ends, normally or by an exception: Ctrl-C is then given back.
        """
        self._signal = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, functools.partial(self._on_sigint, trainer))
            # None: a handler not set from Python; Python's own raises KeyboardInterrupt.
            self._previous_sigint = signal.default_int_handler if previous is None else previous

    def _on_sigint(self, trainer: pl.Trainer, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, self._previous_sigint)  # a second Ctrl-C stops at once
        self._signal = signum
        print("\nCtrl-C: stopping after this batch and writing last.ckpt (Ctrl-C again to stop at once, "
              "without a checkpoint)", flush=True)
        # Lightning's own graceful-stop flag (set by its SIGTERM handler): the loops raise
        # SIGTERMException once the batch is done.
        trainer._signal_connector.received_sigterm = True

    def checkpoint_path(self, trainer: pl.Trainer) -> Path:
        """``last.ckpt`` in the first checkpoint callback's folder, else in ``default_root_dir``."""
        callback = trainer.checkpoint_callback
        folder = getattr(callback, "dirpath", None) or trainer.default_root_dir
        return Path(folder) / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        """Write the checkpoint and set the exit status when the stop came from a signal."""
        if not isinstance(exception, SIGTERMException):
            return
        name = "Ctrl-C" if self._signal == signal.SIGINT else "SIGTERM"
        exception.code = self.exit_status(self._signal or signal.SIGTERM)
        path = self.checkpoint_path(trainer)
        for callback in trainer.checkpoint_callbacks:  # so their next save_last targets the same file
            if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath == str(
                    path.parent):
                callback.last_model_path = str(path)
        try:
            trainer.save_checkpoint(path)
        except NonFiniteCheckpointError as err:
            rank_zero_warn(f"{name}: stopped at step {trainer.global_step} without a checkpoint: {err}")
            return
        if trainer.is_global_zero:
            print(f"{name}: stopped at step {trainer.global_step}; wrote {path} — resume with "
                  f"--ckpt_path={path}", flush=True)


def require_finite_non_negative(owner: str, **values: float) -> None:
    """Raise ``ValueError`` naming the first value that is NaN, infinite or negative.

    Example:
        >>> require_finite_non_negative("MaskToImageModule", lr_g=1e-4, lambda_vgg=float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: model.init_args.lambda_vgg: MaskToImageModule got nan, it must be a finite number >= 0 — set a finite, non-negative value
    """  # noqa: E501
    for name, value in values.items():
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"model.init_args.{name}: {owner} got {value}, it must be a finite number "
                             ">= 0 — set a finite, non-negative value")


def stop_if_not_finite(losses: Mapping[str, Tensor], step: int) -> None:
    """Raise ``FloatingPointError`` naming the first NaN/Inf loss (one host sync for all of them).

    Call it before ``backward``: the weights are still those of the last step, and no checkpoint
    with non-finite weights exists (:class:`AtomicCheckpointIO` refuses to write one).

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
