"""What a mask-to-image LightningModule takes from its DataModule: the label contract and the image size.

:class:`LabelContractModule` is the base of the GAN (:class:`~models.lit.mask_to_image.MaskToImageModule`)
and diffusion (:class:`~models.lit.diffusion.DiffusionModule`) modules: the config may leave the
:data:`DATA_KEYS` unset, and ``setup`` then fills them from the DataModule, records them in the
hyperparameters (so checkpoints carry the label contract) and builds the networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from models.data.label_layout import LabelLayout

__all__ = ["DATA_KEYS", "LAYOUT_EXTRAS", "LabelContractModule", "data_hparams"]

DATA_KEYS = ("label_nc", "contain_dontcare_label", "use_instance", "crop_size", "aspect_ratio")
"""Needed to build the networks: given in the config or taken from the DataModule."""
LAYOUT_EXTRAS = ("dataset_mode", "palette")
"""Optional parts of the label contract, taken from the DataModule when the config leaves them unset."""


def data_hparams(hparams: Mapping[str, Any], datamodule: Any, owner: str) -> dict[str, Any]:
    """The unset :data:`DATA_KEYS` / :data:`LAYOUT_EXTRAS` of ``hparams`` that ``datamodule`` provides.

    Args:
        hparams: the module's hyperparameters (unset ones are ``None``).
        datamodule: the trainer's DataModule (its attributes and ``layout.to_dict()``), or None.
        owner: the module's name, for the error.

    Raises:
        ValueError: naming the config key when a :data:`DATA_KEYS` entry is set nowhere.

    Example:
        >>> from types import SimpleNamespace
        >>> data_hparams({"label_nc": 6, "contain_dontcare_label": False, "use_instance": False,
        ...               "crop_size": None, "aspect_ratio": None, "dataset_mode": "shapes", "palette": None},
        ...              SimpleNamespace(crop_size=64, aspect_ratio=1.0), "Module")
        {'crop_size': 64, 'aspect_ratio': 1.0}
    """
    provided = dict(vars(datamodule)) if datamodule is not None else {}
    if datamodule is not None and hasattr(datamodule, "layout"):
        provided |= datamodule.layout.to_dict()
    resolved = {}
    for key in DATA_KEYS + LAYOUT_EXTRAS:
        if hparams[key] is None and key in provided:
            resolved[key] = provided[key]
        elif hparams[key] is None and key in DATA_KEYS:
            raise ValueError(f"{owner}: '{key}' is not set and no DataModule provides it; set "
                             f"model.init_args.{key} in the config")
    return resolved


class LabelContractModule(pl.LightningModule):
    """A LightningModule whose networks are built (``_build``) once the label contract and size are known.

    Subclasses say whether their networks exist (``built``) and implement ``_build``; they call
    ``_build`` in ``__init__`` when every :data:`DATA_KEYS` entry was given.
    """

    @property
    def layout(self) -> LabelLayout:
        """The label contract this model was trained with (recorded in its checkpoints)."""
        return LabelLayout.from_dict(self.hparams)

    @property
    def built(self) -> bool:
        """Whether the networks exist (the subclass says)."""
        raise NotImplementedError

    def _build(self) -> None:
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        """Take the label layout and image size from the DataModule, then build the networks."""
        if self.built:
            return
        dm = self.trainer.datamodule if self.trainer is not None else None
        resolved = data_hparams(self.hparams, dm, type(self).__name__)
        self.save_hyperparameters({**self.hparams, **resolved})  # checkpoints record the resolved layout
        self._build()

    def encode_labels(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The dense map ``(N, semantic_nc, H, W)`` of a batch's label (+ instance) maps."""
        return self.layout.encode(batch["label"], batch.get("instance"))
