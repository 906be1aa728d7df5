"""Paired image / label-map (/ instance-map) dataset read from files.

Label files are read through the label contract (:class:`~models.data.label_layout.LabelLayout`):
the SPADE id conventions (ADE20K's 1-based ids, 255 as "unlabelled"), palettes for colour
masks, and a check against ``label_nc`` — a wrong ``label_nc``, a forgotten don't-care id or a
colour mask saved as ids are the usual causes of "index out of range" errors deep inside the
model — whose error names the file, the offending ids and the setting to change. Inference
reads files through the same object.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .io import image_size, load_label, load_rgb
from .label_layout import LabelLayout
from .layouts import SamplePaths
from .transforms import PairedTransform

__all__ = ["PairedSemanticDataset"]


class PairedSemanticDataset(Dataset):
    """Image / label map (/ instance map) files, remapped, checked and augmented alike.

    Args:
        samples: the file triples, e.g. from :func:`models.data.layouts.find_samples`.
        layout: the label contract (classes, don't-care id, id shift, instance maps, palette).
        transform: the paired augmentation; default :class:`PairedTransform` ``()`` (286 → 256 crops).

    Returns (per item):
        ``{"image": (3, H, W) float in [-1, 1], "label": (H, W) long, "instance": (H, W) long``
        (only with ``use_instance``) ``, "name": str}``.

    Example:
        >>> PairedSemanticDataset([], LabelLayout(3))
        Traceback (most recent call last):
        ...
        ValueError: PairedSemanticDataset: no samples given; check the dataset folders
    """

    def __init__(self, samples: Sequence[SamplePaths], layout: LabelLayout, *,
                 transform: PairedTransform | None = None) -> None:
        if not samples:
            raise ValueError("PairedSemanticDataset: no samples given; check the dataset folders")
        missing = [s.name for s in samples if s.instance is None]
        if layout.use_instance and missing:
            raise ValueError(f"use_instance=True but {len(missing)} sample(s) have no instance map "
                             f"(e.g. {missing[:5]}); set instance_dir or no_instance=True")
        self.samples = list(samples)
        self.layout = layout
        self.transform = transform if transform is not None else PairedTransform()

    def __len__(self) -> int:
        return len(self.samples)

    def read_label(self, index: int) -> Tensor:
        """Load, remap and check the label map of sample ``index`` (no augmentation)."""
        return self.layout.read(self.samples[index].label)

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
                                  image_size(sample.instance) if self.layout.use_instance else None)
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
        instance = load_label(sample.instance) if self.layout.use_instance else None
        self._check_sizes(sample, image.shape[-2:], label.shape,
                          instance.shape if instance is not None else None)
        image, label, instance = self.transform(image, label, instance)
        item: dict[str, Tensor | str] = {"image": image * 2 - 1, "label": label, "name": sample.name}
        if instance is not None:
            item["instance"] = instance
        return item
