"""Image-synthesis metrics: a download-free fidelity measure, plus LPIPS and FID when available.

``class_color_error`` and ``masked_l1`` need no pretrained network, so they always run and
are what the tests and the demo use to show that a generator has learned. LPIPS and
FID/KID need pretrained backbones (AlexNet, Inception); when those weights cannot be
obtained the factories warn once and return ``None`` rather than failing a training run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from models.weights import read_weights

__all__ = ["class_color_error", "optional_fid", "optional_lpips"]


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
