"""LightningDataModule for mask-to-image training (SPADE, CLADE, OASIS, ...).

Every argument is a plain typed value with a default, so the module is configured from YAML
through LightningCLI; ``None`` means "the dataset's default" from :data:`MODE_DEFAULTS` (the
values of the official SPADE options). The label contract (:attr:`SemanticDataModule.layout`, a
:class:`~models.data.label_layout.LabelLayout`) is resolved in ``__init__`` so the model can
record it before any file is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Subset

from .label_layout import LabelLayout
from .layouts import DATASET_MODES, SamplePaths, find_samples
from .palette import load_palette
from .semantic import PairedSemanticDataset
from .shapes import SHAPES_LABEL_NC, ShapesDataset
from .split_datamodule import SplitDataModule
from .transforms import PairedTransform

__all__ = ["MODE_DEFAULTS", "ModeDefaults", "SemanticDataModule"]


@dataclass(frozen=True)
class ModeDefaults:
    """Per-dataset defaults; ``no_instance=None`` means "no instance maps unless instance_dir is set"."""

    label_nc: int | None
    contain_dontcare_label: bool
    no_instance: bool | None
    preprocess: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    aspect_ratio: float = 1.0


MODE_DEFAULTS = {
    "shapes": ModeDefaults(SHAPES_LABEL_NC, False, False, "none", 64, 64),
    "ade20k": ModeDefaults(150, True, True),
    "cityscapes": ModeDefaults(35, False, False, "fixed", 512, 512, 2.0),
    "coco": ModeDefaults(182, True, False),
    "custom": ModeDefaults(None, False, None),
}


def _split(samples: list[SamplePaths], val_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic random train/val split; at least one sample on each side when val_fraction > 0."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    num_val = min(len(samples) - 1, max(1, round(len(samples) * val_fraction))) if val_fraction else 0
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed)).tolist()
    val = sorted(order[:num_val])
    train = sorted(order[num_val:])
    return [samples[i] for i in train], [samples[i] for i in val]


class SemanticDataModule(SplitDataModule):
    """Label-map → image pairs from a SPADE dataset layout or the built-in shapes.

    Args:
        dataset_mode: ``shapes`` (procedural, no files), ``custom``, ``ade20k``, ``cityscapes`` or
            ``coco`` (folder layouts in :mod:`models.data.layouts`).
        dataroot: dataset root (all file modes; for ``custom`` the base of relative dirs).
        image_dir: ``custom`` only: image folder.
        label_dir: ``custom`` only: label-map folder (ids, or colours with ``palette_file``).
        instance_dir: ``custom`` only: instance-map folder.
        palette_file: colour→id palette (JSON or ``id r g b`` lines) for colour-coded label maps.
        label_nc: number of classes without the don't-care id (ade20k 150, cityscapes 35, coco 182,
            shapes 6; required for custom).
        contain_dontcare_label: add the don't-care id ``label_nc`` (255 maps to it).
        no_instance: drop the instance-edge channel (default per mode).
        preprocess: ``resize_and_crop``, ``fixed``, ``scale_width_and_crop`` or ``none``
            (:mod:`models.data.transforms`); file modes only: shapes are generated at the output size.
        load_size: resize width before cropping (file modes).
        crop_size: output width; the output height is ``round(crop_size / aspect_ratio)``.
        aspect_ratio: output width / height.
        no_flip: disable random horizontal flips (file modes).
        batch_size: per-device batch size.
        num_workers: DataLoader worker processes.
        val_fraction: ``custom``: fraction of the pairs held out for validation (0: none).
        val_phase: file modes but ``custom``: phase folder used for validation; ``None``: none.
        num_train: ``shapes``: training samples.
        num_val: ``shapes``: validation samples.
        seed: ``shapes`` generation seed and ``custom`` split seed.
        validate_labels: read every label map in ``setup`` and fail on bad ids.

    Training loaders shuffle and drop the last incomplete batch (when there is a full one);
    ``val_dataloader`` returns ``[]`` when there is no validation data, which Lightning skips.

    Example:
        >>> dm = SemanticDataModule("shapes", num_train=8, num_val=2, crop_size=32, batch_size=4)
        >>> dm.layout.label_nc, dm.layout.use_instance, dm.layout.semantic_nc
        (6, True, 7)
        >>> dm.setup("fit")
        >>> next(iter(dm.train_dataloader()))["image"].shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(
        self,
        dataset_mode: str = "shapes",
        dataroot: str | None = None,
        image_dir: str | None = None,
        label_dir: str | None = None,
        instance_dir: str | None = None,
        palette_file: str | None = None,
        label_nc: int | None = None,
        contain_dontcare_label: bool | None = None,
        no_instance: bool | None = None,
        preprocess: str | None = None,
        load_size: int | None = None,
        crop_size: int | None = None,
        aspect_ratio: float | None = None,
        no_flip: bool = False,
        batch_size: int = 1,
        num_workers: int = 2,
        val_fraction: float = 0.0,
        val_phase: str | None = "val",
        num_train: int = 1000,
        num_val: int = 16,
        seed: int = 0,
        validate_labels: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if dataset_mode not in MODE_DEFAULTS:
            raise ValueError(f"unknown dataset_mode {dataset_mode!r}; choose one of "
                             f"{', '.join(DATASET_MODES)}")
        defaults = MODE_DEFAULTS[dataset_mode]
        label_nc = label_nc if label_nc is not None else defaults.label_nc
        if label_nc is None:
            raise ValueError(f"{dataset_mode}: set label_nc to the number of classes in your label maps")
        if dataset_mode == "shapes" and label_nc < SHAPES_LABEL_NC:
            raise ValueError(f"shapes has {SHAPES_LABEL_NC} classes; label_nc={label_nc} is too small")
        if no_instance is None:
            no_instance = defaults.no_instance if defaults.no_instance is not None else instance_dir is None
        self.layout = LabelLayout.with_palette(
            load_palette(palette_file) if palette_file else None, label_nc=label_nc,
            contain_dontcare_label=(contain_dontcare_label if contain_dontcare_label is not None
                                    else defaults.contain_dontcare_label),
            use_instance=not no_instance, dataset_mode=dataset_mode)
        self.preprocess = preprocess if preprocess is not None else defaults.preprocess
        self.load_size = load_size if load_size is not None else defaults.load_size
        self.crop_size = crop_size if crop_size is not None else defaults.crop_size
        self.aspect_ratio = aspect_ratio if aspect_ratio is not None else defaults.aspect_ratio
        # Record the resolved values (not the Nones) so checkpoints and logs show what was used.
        self.save_hyperparameters({
            **self.hparams, "label_nc": label_nc, "contain_dontcare_label": self.layout.contain_dontcare_label,
            "no_instance": no_instance, "preprocess": self.preprocess, "load_size": self.load_size,
            "crop_size": self.crop_size, "aspect_ratio": self.aspect_ratio})
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _transform(self, train: bool) -> PairedTransform:
        return PairedTransform(self.preprocess, load_size=self.load_size, crop_size=self.crop_size,
                               aspect_ratio=self.aspect_ratio, flip=not self.hparams.no_flip, train=train)

    def _paired(self, samples: list[SamplePaths], train: bool) -> PairedSemanticDataset:
        return PairedSemanticDataset(samples, self.layout, transform=self._transform(train))

    def _find(self, phase: str) -> list[SamplePaths]:
        hp = self.hparams
        return find_samples(hp.dataset_mode, dataroot=hp.dataroot, phase=phase, image_dir=hp.image_dir,
                            label_dir=hp.label_dir, instance_dir=hp.instance_dir,
                            use_instance=self.layout.use_instance)

    def _build(self) -> tuple[Dataset, Dataset | None]:
        hp = self.hparams
        if hp.dataset_mode == "shapes":
            size = (max(1, round(self.crop_size / self.aspect_ratio)), self.crop_size)
            total = hp.num_train + hp.num_val
            shapes = ShapesDataset(total, size=size, seed=hp.seed, with_instances=self.layout.use_instance)
            val = Subset(shapes, range(hp.num_train, total)) if hp.num_val else None
            return Subset(shapes, range(hp.num_train)), val
        if hp.dataset_mode == "custom":
            train, val = _split(self._find("train"), hp.val_fraction, hp.seed)
        else:
            train, val = self._find("train"), self._find(hp.val_phase) if hp.val_phase else []
        return self._paired(train, True), self._paired(val, False) if val else None

    def setup(self, stage: str | None = None) -> None:
        """Find (or generate) the samples and check every label map once."""
        if self.train_set is not None:
            return
        train, val = self._build()
        if self.hparams.validate_labels:
            for dataset in (train, val):
                if isinstance(dataset, PairedSemanticDataset):
                    dataset.validate()
        self.train_set, self.val_set = train, val

