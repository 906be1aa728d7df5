"""Fixtures shared by the pipeline tests under ``tests/models``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pytorch_lightning as pl

TINY_TRAINER: dict[str, Any] = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                                    enable_model_summary=False, num_sanity_val_steps=0)
"""A quiet single-device CPU Trainer: no logger, progress bar, model summary or sanity validation."""


@pytest.fixture(scope="session")
def tiny_trainer() -> Callable[..., pl.Trainer]:
    """``tiny_trainer(root, **overrides)``: a ``pl.Trainer`` with ``TINY_TRAINER`` writing under ``root``.

    Session-scoped (the factory holds no state) so module-scoped fixtures can train with it too;
    the overrides (``max_steps``, ``limit_val_batches``, ``callbacks``, ...) win over the defaults.
    """

    def make(root: Path, **overrides: Any) -> pl.Trainer:
        import pytorch_lightning as pl  # here, not at the top: the data and network tests never load Lightning

        return pl.Trainer(**{**TINY_TRAINER, "default_root_dir": root, **overrides})

    return make
