"""The loader plumbing shared by every DataModule: a train set, an optional validation set."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["SplitDataModule"]


class SplitDataModule(pl.LightningDataModule):
    """A DataModule whose ``setup`` fills ``train_set`` and (optionally) ``val_set``.

    Subclasses save ``batch_size`` and ``num_workers`` as hyperparameters. The training loader
    shuffles and drops an incomplete last batch (when there is at least one full batch); with
    no validation set, ``val_dataloader`` returns ``[]`` and Lightning skips validation.
    """

    train_set: Dataset | None = None
    val_set: Dataset | None = None

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(dataset, batch_size=self.hparams.batch_size, shuffle=train, num_workers=workers,
                          drop_last=train and len(dataset) >= self.hparams.batch_size,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        """The shuffled training loader (after ``setup('fit')``)."""
        if self.train_set is None:
            raise RuntimeError("call setup('fit') before train_dataloader()")
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | list:
        """The validation loader, or an empty list (Lightning skips validation) when there is none."""
        return self._loader(self.val_set, train=False) if self.val_set is not None else []
