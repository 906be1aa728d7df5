"""Paired augmentation: one random resize/crop/flip applied alike to image, label and instance map.

The image, label and instance maps are wrapped as torchvision ``tv_tensors`` (``Image``,
``Mask``) and passed through one ``transforms.v2`` call, so they share every random draw;
masks are resampled nearest, so ids stay exact, and images bicubic with antialiasing.

Preprocess modes (the SPADE options; output size ``(H, W) = (round(crop_size / aspect_ratio),
crop_size)``):

===================== ==========================================================================
``resize_and_crop``   resize to ``(round(load_size / aspect_ratio), load_size)``, then crop
``fixed``             resize straight to the output size (Cityscapes: 512×256), no crop
``scale_width_and_crop`` scale the width to ``load_size`` keeping the aspect ratio (more if the
                      height would fall short of the crop), then crop
``none``              keep the size, only rounded to a multiple of 32 (the generator's stride)
===================== ==========================================================================

Crops are random in training and centred otherwise; the horizontal flip is training-only.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["PREPROCESS_MODES", "PairedTransform"]

PREPROCESS_MODES = ("resize_and_crop", "fixed", "scale_width_and_crop", "none")
_STRIDE = 32


class PairedTransform:
    """Resize/crop/flip an image and its label (and instance) map with the same parameters.

    Args:
        preprocess: one of :data:`PREPROCESS_MODES`.
        load_size: width to resize to before cropping (``resize_and_crop``,
            ``scale_width_and_crop``).
        crop_size: output width; the output height is ``round(crop_size / aspect_ratio)``.
        aspect_ratio: output width / height.
        flip: random horizontal flips (training only).
        train: random crop and flip; otherwise centre crop and no flip.

    Example:
        >>> t = PairedTransform("resize_and_crop", load_size=40, crop_size=32)
        >>> img, lbl, inst = t(torch.rand(3, 50, 60), torch.zeros(50, 60, dtype=torch.long), None)
        >>> img.shape, lbl.shape, inst
        (torch.Size([3, 32, 32]), torch.Size([32, 32]), None)
    """

    def __init__(self, preprocess: str = "resize_and_crop", *, load_size: int = 286, crop_size: int = 256,
                 aspect_ratio: float = 1.0, flip: bool = True, train: bool = True) -> None:
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(f"unknown preprocess {preprocess!r}; choose one of "
                             f"{', '.join(PREPROCESS_MODES)}")
        if crop_size < 1 or aspect_ratio <= 0:
            raise ValueError(f"need crop_size >= 1 and aspect_ratio > 0, got {crop_size}, {aspect_ratio}")
        if preprocess.endswith("crop") and load_size < crop_size:
            raise ValueError(f"preprocess={preprocess!r} needs load_size >= crop_size, got load_size="
                             f"{load_size} < crop_size={crop_size}")
        self.preprocess, self.load_size, self.aspect_ratio = preprocess, load_size, aspect_ratio
        self.out_size = (max(1, round(crop_size / aspect_ratio)), crop_size)
        crop = v2.RandomCrop(self.out_size) if train else v2.CenterCrop(self.out_size)
        steps = [crop] if preprocess.endswith("crop") else []
        if flip and train:
            steps.append(v2.RandomHorizontalFlip())
        self.augment = v2.Compose(steps or [v2.Identity()])

    def resize_target(self, height: int, width: int) -> tuple[int, int]:
        """Size ``(H, W)`` the input is resized to before cropping."""
        crop_h, crop_w = self.out_size
        if self.preprocess == "resize_and_crop":
            return max(crop_h, round(self.load_size / self.aspect_ratio)), self.load_size
        if self.preprocess == "fixed":
            return self.out_size
        if self.preprocess == "scale_width_and_crop":
            scale = max(self.load_size / width, crop_h / height)
            return max(crop_h, round(height * scale)), max(crop_w, round(width * scale))
        return tuple(max(_STRIDE, round(side / _STRIDE) * _STRIDE) for side in (height, width))

    def __call__(self, image: Tensor, label: Tensor,
                 instance: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Transform ``image`` ``(3, H, W)`` in [0, 1], ``label`` and ``instance`` ``(H, W)``.

        Returns:
            The transformed triple as plain tensors; the image is clamped to [0, 1].
        """
        size = self.resize_target(*image.shape[-2:])
        image = tv_tensors.Image(image)
        label = tv_tensors.Mask(label)
        instance = tv_tensors.Mask(instance) if instance is not None else None
        if size != tuple(image.shape[-2:]):
            resize = v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
            image, label, instance = resize(image, label, instance)
        image, label, instance = self.augment(image, label, instance)
        plain = instance.as_subclass(torch.Tensor) if instance is not None else None
        return image.as_subclass(torch.Tensor).clamp(0, 1), label.as_subclass(torch.Tensor), plain
