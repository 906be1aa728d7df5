"""Callbacks shared by the task modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.seed import isolate_rng
from torch import Tensor

from models.data.io import save_grid

__all__ = ["GridSource", "SampleGrids"]


class GridSource(Protocol):
    """A LightningModule that can turn a batch into columns of images for a grid."""

    def sample_columns(self, batch: Any) -> list[Tensor]:
        """Return columns ``(N, 3, H, W)`` in [0, 1] (e.g. label │ generated │ real)."""
        ...


class SampleGrids(pl.Callback):
    """Save a grid of samples every ``every_n_steps`` training steps and at each validation end.

    The grid is made from the first validation batch (or the first training batch when there
    is no validation data), fixed for the whole run so the grids are comparable over time.
    PNGs go to ``<log_dir>/samples/step_XXXXXX.png``; loggers with ``log_image`` also get them.
    Drawing the batch and the samples leaves the random state untouched (``isolate_rng``), so
    adding or removing grids does not change the training run.

    Args:
        every_n_steps: interval in optimiser steps; 0 disables the periodic grids.
        max_samples: rows per grid.
    """

    def __init__(self, every_n_steps: int = 500, max_samples: int = 8) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.max_samples = max_samples
        self._batch: Any = None
        self._last_step = -1

    def _fixed_batch(self, trainer: pl.Trainer, fallback: Any) -> Any:
        if self._batch is None:
            self._batch = fallback
            loaders = trainer.val_dataloaders
            if loaders is not None:
                loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
                with isolate_rng():
                    self._batch = next(iter(loader))
        return self._batch

    def _save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        step = trainer.global_step
        if step == self._last_step:
            return
        self._last_step = step
        # log_dir broadcasts from rank 0 under DDP: every rank must ask, before the others return.
        out_dir = Path(trainer.log_dir or trainer.default_root_dir) / "samples"
        if not trainer.is_global_zero:
            return
        batch = pl_module.transfer_batch_to_device(_head(batch, self.max_samples), pl_module.device, 0)
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad(), isolate_rng():
            columns = pl_module.sample_columns(batch)  # type: ignore[operator]
        pl_module.train(was_training)
        path = save_grid(columns, out_dir / f"step_{step:06d}.png")
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="samples", images=[str(path)], step=step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0 and trainer.global_step:
            self._save(trainer, pl_module, self._fixed_batch(trainer, batch))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._batch is not None:
            self._save(trainer, pl_module, self._batch)

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            if self._batch is None:
                self._batch = batch
            self._save(trainer, pl_module, self._batch)


def _head(batch: Any, n: int) -> Any:
    """The first ``n`` samples of a batch (dicts, lists and tensors)."""
    if isinstance(batch, Tensor):
        return batch[:n]
    if isinstance(batch, dict):
        return {k: _head(v, n) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_head(v, n) for v in batch)
    if isinstance(batch, list):
        return batch[:n]
    return batch
