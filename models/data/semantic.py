"""Paired image / label-map (/ instance-map) dataset read from files.

Label ids go through the SPADE conventions: ADE20K's ids are shifted down by one with 0
("other") becoming the don't-care id ``label_nc``, and with ``contain_dontcare_label`` the
value 255 ("unlabelled") becomes ``label_nc`` too. Every label map is then checked against
``label_nc`` — a wrong ``label_nc``, a forgotten don't-care id or a colour mask saved as ids are
the usual causes of "index out of range" errors deep inside the model — and the error names the
file, the offending ids and the setting to change.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .io import image_size, load_label, load_rgb
from .layouts import SamplePaths
from .palette import Palette
from .transforms import PairedTransform

__all__ = ["PairedSemanticDataset", "check_label_ids", "remap_ids"]

_DONTCARE_VALUE = 255


def remap_ids(label: Tensor, *, dataset_mode: str, label_nc: int, contain_dontcare_label: bool) -> Tensor:
    """Map the ids stored in a label file to training ids.

    ADE20K: ``k -> k - 1`` and ``0 -> label_nc``. Any mode, with ``contain_dontcare_label``:
    ``255 -> label_nc``.

    Example:
        >>> remap_ids(torch.tensor([0, 1, 150]), dataset_mode="ade20k", label_nc=150,
        ...           contain_dontcare_label=True)
        tensor([150,   0, 149])
        >>> remap_ids(torch.tensor([3, 255]), dataset_mode="coco", label_nc=182, contain_dontcare_label=True)
        tensor([  3, 182])
    """
    dontcare = label == _DONTCARE_VALUE if contain_dontcare_label else None
    if dataset_mode == "ade20k":
        label = label - 1
        label[label < 0] = label_nc
    if dontcare is not None:
        label = label.masked_fill(dontcare, label_nc)
    return label


def check_label_ids(label: Tensor, name: str, *, label_nc: int, contain_dontcare_label: bool) -> None:
    """Raise a ValueError naming ``name``, the ids outside the valid range and how to fix it.

    Example:
        >>> try:
        ...     check_label_ids(torch.tensor([0, 7, 255]), "a.png", label_nc=5, contain_dontcare_label=False)
        ... except ValueError as err:
        ...     message = str(err)
        >>> message.split(" Fix")[0]
        'a.png: label ids [7, 255] are outside [0, 5) (label_nc=5, contain_dontcare_label=False).'
        >>> "set contain_dontcare_label=True" in message
        True
    """
    num_ids = label_nc + int(contain_dontcare_label)
    if label.numel() == 0 or (int(label.min()) >= 0 and int(label.max()) < num_ids):
        return
    bad = torch.unique(label[(label < 0) | (label >= num_ids)]).tolist()
    hints = ["set label_nc to the number of classes (the largest valid id + 1)"]
    if _DONTCARE_VALUE in bad and not contain_dontcare_label:
        hints.append(f"set contain_dontcare_label=True if {_DONTCARE_VALUE} marks unlabelled pixels")
    hints.append("if the mask is a colour (RGB) image, map colours to ids with a palette file")
    listed = f"{bad[:20]}{f' and {len(bad) - 20} more' if len(bad) > 20 else ''}"
    raise ValueError(f"{name}: label ids {listed} are outside [0, {num_ids}) (label_nc={label_nc}, "
                     f"contain_dontcare_label={contain_dontcare_label}). Fix: " + "; ".join(hints))


class PairedSemanticDataset(Dataset):
    """Image / label map (/ instance map) files, remapped, checked and augmented alike.

    Args:
        samples: the file triples, e.g. from :func:`models.data.layouts.find_samples`.
        label_nc: number of classes, not counting the don't-care id.
        contain_dontcare_label: keep the don't-care id ``label_nc`` (255 and ADE20K's 0 map to it).
        use_instance: read the instance maps (every sample must have one).
        dataset_mode: selects the id remapping (:func:`remap_ids`).
        palette: ``{id: (r, g, b)}`` to read colour-coded label maps; ``None`` reads ids.
        transform: the paired augmentation; default :class:`PairedTransform` ``()`` (286 → 256 crops).

    Returns (per item):
        ``{"image": (3, H, W) float in [-1, 1], "label": (H, W) long, "instance": (H, W) long``
        (only with ``use_instance``) ``, "name": str}``.

    Example:
        >>> PairedSemanticDataset([], label_nc=3)
        Traceback (most recent call last):
        ...
        ValueError: PairedSemanticDataset: no samples given; check the dataset folders
    """

    def __init__(self, samples: Sequence[SamplePaths], *, label_nc: int, contain_dontcare_label: bool = False,
                 use_instance: bool = False, dataset_mode: str = "custom", palette: Palette | None = None,
                 transform: PairedTransform | None = None) -> None:
        if not samples:
            raise ValueError("PairedSemanticDataset: no samples given; check the dataset folders")
        missing = [s.name for s in samples if s.instance is None]
        if use_instance and missing:
            raise ValueError(f"use_instance=True but {len(missing)} sample(s) have no instance map "
                             f"(e.g. {missing[:5]}); set instance_dir or no_instance=True")
        self.samples = list(samples)
        self.label_nc, self.contain_dontcare_label = label_nc, contain_dontcare_label
        self.use_instance, self.dataset_mode, self.palette = use_instance, dataset_mode, palette
        self.transform = transform if transform is not None else PairedTransform()

    def __len__(self) -> int:
        return len(self.samples)

    def read_label(self, index: int) -> Tensor:
        """Load, remap and check the label map of sample ``index`` (no augmentation)."""
        path = self.samples[index].label
        label = remap_ids(load_label(path, self.palette), dataset_mode=self.dataset_mode,
                          label_nc=self.label_nc, contain_dontcare_label=self.contain_dontcare_label)
        check_label_ids(label, str(path), label_nc=self.label_nc,
                        contain_dontcare_label=self.contain_dontcare_label)
        return label

    @staticmethod
    def _check_sizes(sample: SamplePaths, image_hw: Sequence[int], label_hw: Sequence[int],
                     instance_hw: Sequence[int] | None) -> None:
        for hw, path in ((label_hw, sample.label), (instance_hw, sample.instance)):
            if hw is not None and tuple(hw) != tuple(image_hw):
                raise ValueError(f"{path}: size {tuple(hw)} differs from its image {sample.image} "
                                 f"{tuple(image_hw)}; label and instance maps must match the image "
                                 "(resize them with nearest-neighbour interpolation, or fix the pairing)")

    def validate(self, *, max_errors: int = 10, progress: bool = True) -> None:
        """Read every label map and the image (and instance map) headers; raise listing bad samples.

        Stops at ``max_errors`` bad samples, so a bad file fails at setup rather than mid-epoch.

        Raises:
            ValueError: one line per bad sample (unreadable file, colour mask, ids out of range,
                label or instance map of another size than its image).
        """
        errors = []
        for index in tqdm(range(len(self)), desc="checking label maps", disable=not progress):
            sample = self.samples[index]
            try:
                label = self.read_label(index)
                self._check_sizes(sample, image_size(sample.image), label.shape,
                                  image_size(sample.instance) if self.use_instance else None)
            except ValueError as err:  # ImageReadError included
                errors.append(str(err))
                if len(errors) >= max_errors:
                    break
        if errors:
            stopped = f" (stopped after {max_errors})" if len(errors) >= max_errors else ""
            raise ValueError(f"{len(errors)} bad label map(s){stopped}:\n  " + "\n  ".join(errors))

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        sample = self.samples[index]
        image, label = load_rgb(sample.image), self.read_label(index)
        instance = load_label(sample.instance) if self.use_instance else None
        self._check_sizes(sample, image.shape[-2:], label.shape,
                          instance.shape if instance is not None else None)
        image, label, instance = self.transform(image, label, instance)
        item: dict[str, Tensor | str] = {"image": image * 2 - 1, "label": label, "name": sample.name}
        if instance is not None:
            item["instance"] = instance
        return item
