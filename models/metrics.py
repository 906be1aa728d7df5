"""Image-synthesis metrics: a download-free fidelity measure, plus LPIPS and FID when available.

``class_color_error`` and ``masked_l1`` need no pretrained network, so they always run and
are what the tests and the demo use to show that a generator has learned. LPIPS and
FID/KID need pretrained backbones (AlexNet, Inception); when those weights cannot be
obtained the factories warn once and return ``None`` rather than failing a training run.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from models.weights import read_weights

__all__ = ["class_color_error", "confusion_matrix", "optional_fid", "optional_lpips", "segmentation_scores"]


def class_color_error(fake: Tensor, real: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Mean absolute difference of per-class mean colours between two images.

    For every sample and every class present in its label map, the mean RGB colour of the
    class's pixels is taken in both images; the result averages ``|mean_fake - mean_real|``
    over channels, classes present and samples. Images are in [-1, 1]; the error is reported
    on the [0, 1] scale (0 = identical class colours, 1 = black vs white).

    Args:
        fake: generated images ``(N, 3, H, W)`` in [-1, 1].
        real: ground-truth images ``(N, 3, H, W)`` in [-1, 1].
        labels: class ids ``(N, H, W)`` in ``[0, num_classes)``.
        num_classes: number of classes.

    Returns:
        A scalar tensor.

    Example:
        >>> img = torch.zeros(1, 3, 4, 4); labels = torch.zeros(1, 4, 4, dtype=torch.long)
        >>> float(class_color_error(img, img + 1.0, labels, 2))
        0.5
    """
    onehot = torch.nn.functional.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).to(fake.dtype)
    area = onehot.sum((2, 3))  # (N, L)
    present = area > 0
    mean_fake = torch.einsum("nlhw,nchw->nlc", onehot, fake) / area.clamp(min=1)[..., None]
    mean_real = torch.einsum("nlhw,nchw->nlc", onehot, real) / area.clamp(min=1)[..., None]
    err = (mean_fake - mean_real).abs().mean(-1) / 2.0  # [-1, 1] -> [0, 1] scale
    return err[present].mean()


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, *, ignore_index: int | None = None) -> Tensor:
    """Pixel counts ``C[t, p]``: pixels of target class ``t`` predicted as ``p`` (``num_classes`` square, int64).

    Pixels whose target is ``ignore_index`` (the don't-care id) are not counted.

    Raises:
        ValueError: if a counted target or a prediction is outside ``[0, num_classes)``.

    Example:
        >>> confusion_matrix(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 0], [1, 2]]), 3)
        tensor([[1, 1, 0],
                [0, 1, 0],
                [0, 1, 0]])
    """
    target, pred = target.reshape(-1).long(), pred.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        target, pred = target[keep], pred[keep]
    for name, ids in (("target", target), ("prediction", pred)):
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
            raise ValueError(f"confusion_matrix: {name} ids outside [0, {num_classes}): "
                             f"{torch.unique(ids[(ids < 0) | (ids >= num_classes)]).tolist()[:10]}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def segmentation_scores(confusion: Tensor) -> dict[str, Any]:
    """mIoU, per-class IoU and area ratio, pixel accuracy of a :func:`confusion_matrix` (rows: target, cols: predicted).

    ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``, averaged over the classes present in the targets (a class
    that never occurs in the labels is not scored, even if predicted: its ``class_iou`` entry is NaN;
    its false positives still lower the other classes' scores and the accuracy); pixel accuracy =
    correct pixels / counted pixels; ``class_area_ratio_c`` = pixels predicted as ``c`` / pixels of
    ``c`` in the targets (above 1: the class is segmented larger than its mask; NaN when absent).

    Example:
        >>> scores = segmentation_scores(torch.tensor([[1, 1, 0], [0, 1, 0], [0, 1, 0]]))
        >>> round(scores["miou"], 4), scores["pixel_accuracy"], scores["classes_scored"]
        (0.2778, 0.5, 3)
        >>> [round(iou, 4) for iou in scores["class_iou"]]
        [0.5, 0.3333, 0.0]
        >>> scores["class_area_ratio"]
        [0.5, 3.0, 0.0]
    """
    confusion = confusion.double()
    tp = confusion.diagonal()
    support = confusion.sum(1)  # target pixels per class
    present = support > 0
    union = support + confusion.sum(0) - tp
    absent = torch.full_like(tp, float("nan"))
    class_iou = torch.where(present, tp / union.clamp(min=1), absent)
    area_ratio = torch.where(present, confusion.sum(0) / support.clamp(min=1), absent)
    iou = class_iou[present]
    total = float(confusion.sum())
    return {"miou": float(iou.mean()) if iou.numel() else float("nan"),
            "pixel_accuracy": float(tp.sum()) / total if total else float("nan"),
            "classes_scored": int(present.sum()),
            "class_iou": class_iou.tolist(),
            "class_area_ratio": area_ratio.tolist()}


def optional_lpips(net: str = "alex") -> nn.Module | None:
    """An LPIPS module, or ``None`` with a warning when its backbone weights cannot be had.

    The ``lpips`` package fetches the ImageNet backbone through torchvision; offline
    machines can place the file in torch's hub cache (``~/.cache/torch/hub/checkpoints``).
    """
    try:
        import lpips

        return lpips.LPIPS(net=net, verbose=False).eval().requires_grad_(False)
    except Exception as err:  # network errors come as URLError/OSError/RuntimeError
        warnings.warn(f"LPIPS disabled: its {net} backbone weights could not be loaded ({err}); "
                      "put them in torch's hub cache to enable it", stacklevel=2)
        return None


def optional_fid(weights_path: str | None = None, feature: int = 2048) -> nn.Module | None:
    """A torchmetrics FID metric, or ``None`` with a warning when Inception weights are missing.

    Args:
        weights_path: a local copy of torch-fidelity's Inception weights (offline use).
        feature: Inception feature size (64, 192, 768 or 2048).

    Raises:
        ValueError: if ``weights_path`` holds pickled objects other than tensors: torch-fidelity
            unpickles it with ``weights_only=False``, so the file is vetted with
            :func:`models.weights.read_weights` first.
    """
    if weights_path is not None and Path(weights_path).is_file():
        read_weights(weights_path)
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        return FrechetInceptionDistance(feature=feature, normalize=True,
                                        feature_extractor_weights_path=weights_path)
    except Exception as err:
        warnings.warn(f"FID disabled: Inception weights could not be loaded ({err}); pass a local "
                      "weights file (fid_weights) to enable it", stacklevel=2)
        return None
