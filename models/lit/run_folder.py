"""One run per log folder: a new run never overwrites another's logs, a resumed run appends to its own.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when it opens a version folder that already
has one, and ``train.py`` rewrites ``config.yaml`` there: two runs given the same
``version`` overwrite each other, and resuming into the run's own folder loses its earlier
metrics. Every config uses :class:`CSVLogger` (appends, keeps the earlier rows) and ``train.py``
calls :func:`check_log_folders` before fitting (a new run into a folder that holds files is
refused).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable

from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers import Logger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_only

__all__ = ["CSVLogger", "RunFolderError", "check_log_folders"]


class RunFolderError(ValueError):
    """A new run was pointed at a log folder that holds another run's files."""


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, but an existing ``metrics.csv`` is kept and appended to."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class CSVLogger(LightningCSVLogger):
    """Lightning's ``CSVLogger`` that appends to the version folder's ``metrics.csv`` instead of deleting it.

    A run resumed with ``--ckpt_path`` into its own version folder keeps the rows logged before
    the interruption (rows logged after the checkpoint it resumes from appear again, with the
    same steps). Columns new to the file are added, as Lightning does.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> first = CSVLogger(root, name="run", version=0)
        >>> first.log_metrics({"loss": 1.0}, step=0); first.save()
        >>> again = CSVLogger(root, name="run", version=0)
        >>> again.log_metrics({"loss": 0.5}, step=1); again.save()
        >>> open(os.path.join(root, "run", "version_0", "metrics.csv")).read().split()
        ['loss,step', '1.0,0', '0.5,1']
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The CSV writer (created on first use)."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def check_log_folders(loggers: Iterable[Logger], *, resuming: bool) -> None:
    """Refuse a new run whose logger's folder already holds a run's files (on the global-zero process).

    A folder holding only ``config.yaml`` is free: ``train.py`` writes it at setup, so an attempt
    that failed before training (a mistyped ``--ckpt_path``, a model setup error) leaves nothing
    else, and nothing to lose.

    Args:
        loggers: the Trainer's loggers; those with a ``log_dir`` are checked.
        resuming: the run continues from a checkpoint (``--ckpt_path``): its folder may hold files.

    Raises:
        RunFolderError: (a ``ValueError``) naming the folder and the two ways out.

    Example:
        >>> import tempfile
        >>> logger = CSVLogger(tempfile.mkdtemp(), name="run", version="a")
        >>> logger.log_metrics({"loss": 1.0}); logger.save()
        >>> check_log_folders([logger], resuming=True)
        >>> check_log_folders([CSVLogger(tempfile.mkdtemp(), name="run", version="new")], resuming=False)
        >>> check_log_folders([logger], resuming=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        models.lit.run_folder.RunFolderError: .../run/a: this log folder holds another run (metrics.csv) that a new run would overwrite — give the new run another version (--trainer.logger.init_args.version=..., or leave it unset for the next free one), or resume that run with --ckpt_path=<its checkpoints/last.ckpt>
    """  # noqa: E501
    if resuming or rank_zero_only.rank != 0:
        return
    for logger in loggers:
        log_dir = getattr(logger, "log_dir", None)
        if not (log_dir and os.path.isdir(log_dir)):
            continue
        held = sorted(set(os.listdir(log_dir)) - {"config.yaml"})
        if held:
            shown = ", ".join(held[:4]) + (", …" if len(held) > 4 else "")
            raise RunFolderError(
                f"{log_dir}: this log folder holds another run ({shown}) that a new run would overwrite — "
                "give the new run another version (--trainer.logger.init_args.version=..., or leave it unset "
                "for the next free one), or resume that run with --ckpt_path=<its checkpoints/last.ckpt>")
