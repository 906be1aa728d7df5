"""The evaluation protocol of a mask-to-image generator over held-out (label, real image) pairs.

:func:`evaluate` generates ``num_samples`` images per label map (image ``j`` of sample ``k`` draws
its noise / latent with seed ``seed + k·N + j``, so results do not depend on batching) and measures:

- ``class_color_error``: :func:`models.metrics.class_color_error` of every generation against its
  real image (mean over images and samples; 0 = the same mean colour in every class region);
- ``miou`` / ``pixel_accuracy``: how well a segmenter recovers the label map from the generated
  images (confusion matrix over all generations; mIoU over the classes present in the labels,
  don't-care pixels not counted), when a ``segmenter`` is given;
- ``lpips_diversity``: mean LPIPS between the ``num_samples`` generations of one mask (all pairs),
  averaged over masks; exactly 0 for a deterministic generator; when an ``lpips`` module is given;
- ``fid`` / ``kid_mean`` / ``kid_std``: torchmetrics FID and KID of all generations against the real
  images, with a local Inception weights file (``fid_weights``, torch-fidelity's format).

Metrics that were not asked for are ``None``. With ``out`` the report is written as
``report.json`` and ``report.md`` (a Markdown table) with a comparison grid ``grid.png``
(mask │ sample 1 │ … │ real, one row per mask).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.data.io import load_rgb, save_grid
from models.data.palette import colorize_labels
from models.metrics import class_color_error, confusion_matrix, optional_fid, segmentation_scores
from models.weights import atomic_write

from .mask_to_image import LabelInput, MaskToImage, resize_ids, resize_image

__all__ = ["METRICS", "evaluate", "markdown_table", "write_report"]

METRICS = ("class_color_error", "miou", "pixel_accuracy", "lpips_diversity", "fid", "kid_mean", "kid_std")
"""The metric keys of :func:`evaluate`'s result, in report order."""

Segmenter = Callable[[Tensor], Tensor]
ImageInput = str | Path | Tensor


def _real_image(image: ImageInput, size: tuple[int, int]) -> Tensor:
    """A real image ``(3, H, W)`` in [0, 1] at the label map's ``size``."""
    real = load_rgb(image) if not isinstance(image, Tensor) else image.float()
    return resize_image(real.clamp(0, 1), size)


def _segment(segmenter: Segmenter, image: Tensor, num_classes: int) -> Tensor:
    """The segmenter's ids ``(H, W)`` of one image in [0, 1] (argmax over the first ``num_classes`` logits)."""
    logits = segmenter(image[None])
    if not isinstance(logits, Tensor) or logits.dim() != 4 or logits.shape[1] < num_classes:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"the segmenter must return logits (N, >= {num_classes}, H, W) for the label_nc="
                         f"{num_classes} classes, got {shape}")
    logits = logits[:, :num_classes].float()
    if tuple(logits.shape[-2:]) != tuple(image.shape[-2:]):
        logits = F.interpolate(logits, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].cpu()


class _Inception:
    """FID and KID over one shared Inception network loaded from a local torch-fidelity weights file."""

    def __init__(self, weights: str | Path, device: torch.device) -> None:
        from torchmetrics.image.kid import KernelInceptionDistance

        if not Path(weights).is_file():
            raise FileNotFoundError(f"fid_weights {weights} does not exist")
        fid = optional_fid(str(weights))
        if fid is None:
            raise ValueError(f"fid_weights {weights}: the Inception network could not be built from this file")
        self.fid = fid.to(device)
        with warnings.catch_warnings():  # "will save all extracted features": evaluation sets are small
            warnings.filterwarnings("ignore", message=".*save all extracted features", category=UserWarning)
            self.kid = KernelInceptionDistance(feature=self.fid.inception, subsets=100, subset_size=2).to(device)
        self.count = 0

    def update(self, image: Tensor, *, real: bool) -> None:
        self.fid.update(image[None], real=real)
        self.kid.update((image[None] * 255).round().to(torch.uint8), real=real)  # the custom net takes uint8
        self.count += int(not real)

    def compute(self, num_real: int) -> dict[str, float]:
        if min(num_real, self.count) < 2:
            raise ValueError(f"FID/KID need at least 2 real and 2 generated images, got {num_real} and {self.count}")
        self.kid.subset_size = min(num_real, self.count, 1000)
        kid_mean, kid_std = self.kid.compute()
        return {"fid": float(self.fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}


@torch.inference_mode()
def evaluate(model: MaskToImage, samples: Iterable[tuple[LabelInput, ImageInput]], *,
             segmenter: Segmenter | None = None, num_samples: int = 2, seed: int = 0, lpips: nn.Module | None = None,
             fid_weights: str | Path | None = None, out: str | Path | None = None, batch_size: int = 4,
             grid_rows: int = 8) -> dict[str, Any]:
    """Evaluate ``model`` on held-out ``(label, real image)`` pairs (see the module docstring).

    Args:
        model: the generator and its label contract.
        samples: ``(label, image)`` pairs: label files or ``(H, W)`` stored-id tensors (read through
            the model's label contract), image files or ``(3, H, W)`` tensors in [0, 1] (resized to
            the label map's size if they differ).
        segmenter: images ``(N, 3, H, W)`` in [0, 1] → logits ``(N, classes, H, W)`` (a module, a
            TorchScript file loaded with :func:`~models.app.shapes_segmenter.load_segmenter`, …).
        num_samples: generations per mask (different seeds).
        seed: the first seed.
        lpips: an LPIPS module (``models.metrics.optional_lpips()``) for ``lpips_diversity``.
        fid_weights: a local torch-fidelity Inception weights file for ``fid``/``kid_*``.
        out: folder for ``report.json``, ``report.md`` and ``grid.png`` (None: nothing is written).
        batch_size: masks per generator call.
        grid_rows: masks shown in the grid.

    Returns:
        ``{metric: value or None for metric in METRICS}`` plus ``num_images``, ``num_samples``,
        ``seed``, ``model`` and, with ``out``, ``files``.

    Raises:
        ValueError: for no samples, ``num_samples < 1``, label maps that break the contract, or a
            segmenter whose output does not fit; FileNotFoundError for missing files.
    """
    pairs = list(samples)
    if not pairs:
        raise ValueError("evaluate: no (label, image) pairs given")
    if num_samples < 1:
        raise ValueError(f"evaluate: num_samples must be >= 1, got {num_samples}")
    layout, count = model.layout, len(pairs)
    inception = _Inception(fid_weights, model.device) if fid_weights is not None else None
    confusion = torch.zeros(layout.label_nc, layout.label_nc, dtype=torch.long) if segmenter is not None else None
    color_errors: list[float] = []
    diversity: list[float] = []
    grid: list[tuple[Tensor, list[Tensor], Tensor]] = []
    for start in range(0, count, batch_size):
        chunk = pairs[start:start + batch_size]
        ids = [model.read_labels(label) for label, _ in chunk]  # each file read once, through the contract
        generations = [model.generate_ids(ids, seed=seed + k * count + start) for k in range(num_samples)]
        for j, ((_, image), label) in enumerate(zip(chunk, ids)):
            real = _real_image(image, tuple(label.shape))
            fakes = [generations[k][j].cpu() for k in range(num_samples)]
            if inception is not None:
                inception.update(real.to(model.device), real=True)
            for fake in fakes:
                color_errors.append(float(class_color_error(fake[None] * 2 - 1, real[None] * 2 - 1, label[None],
                                                            layout.num_ids)))
                if confusion is not None:
                    predicted = _segment(segmenter, fake.to(model.device), layout.label_nc)
                    confusion += confusion_matrix(predicted, label, layout.label_nc,
                                                  ignore_index=layout.label_nc if layout.contain_dontcare_label
                                                  else None)
                if inception is not None:
                    inception.update(fake.to(model.device), real=False)
            if lpips is not None and num_samples > 1:
                pairs_lpips = [float(lpips(a[None].to(model.device) * 2 - 1, b[None].to(model.device) * 2 - 1).mean())
                               for a, b in combinations(fakes, 2)]
                diversity.append(sum(pairs_lpips) / len(pairs_lpips))
            if len(grid) < grid_rows:
                grid.append((label, fakes, real))
    report: dict[str, Any] = dict.fromkeys(METRICS)
    report["class_color_error"] = sum(color_errors) / len(color_errors)
    if confusion is not None:
        scores = segmentation_scores(confusion)
        report["miou"], report["pixel_accuracy"] = scores["miou"], scores["pixel_accuracy"]
    if diversity:
        report["lpips_diversity"] = sum(diversity) / len(diversity)
    if inception is not None:
        report.update(inception.compute(count))
    report.update(num_images=count, num_samples=num_samples, seed=seed, model=model.source)
    if out is not None:
        report["files"] = write_report(report, out, grid, layout.num_ids, model.output_size)
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """The metrics of a report as a two-column Markdown table (``—`` for metrics not measured).

    Example:
        >>> print(markdown_table({"class_color_error": 0.25, "miou": None}))
        | metric | value |
        |---|---|
        | class_color_error | 0.2500 |
        | miou | — |
    """
    rows = ["| metric | value |", "|---|---|"]
    for key in [k for k in METRICS if k in report]:
        value = report[key]
        rows.append(f"| {key} | {'—' if value is None or not math.isfinite(value) else f'{value:.4f}'} |")
    return "\n".join(rows)


def write_report(report: dict[str, Any], out: str | Path, grid: Sequence[tuple[Tensor, list[Tensor], Tensor]],
                 num_ids: int, size: Sequence[int]) -> dict[str, str]:
    """Write ``report.json``, ``report.md`` and ``grid.png`` (mask │ samples │ real, tiles at ``size``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "report.json", "markdown": out / "report.md", "grid": out / "grid.png"}
    header = (f"Evaluation of {report['model']}: {report['num_images']} mask(s) × {report['num_samples']} "
              f"sample(s), seed {report['seed']}\n\n")
    record = {**report, "files": {k: str(v) for k, v in files.items()}}
    atomic_write(files["json"], lambda f: f.write(json.dumps(record, indent=2).encode()))
    atomic_write(files["markdown"], lambda f: f.write((header + markdown_table(report) + "\n").encode()))
    columns: list[list[Tensor]] = [[] for _ in range(len(grid[0][1]) + 2)]
    for label, fakes, real in grid:
        columns[0].append(colorize_labels(resize_ids(label, size)[None], num_ids)[0])
        for k, fake in enumerate(fakes):
            columns[k + 1].append(resize_image(fake, size))
        columns[-1].append(resize_image(real, size))
    save_grid([torch.stack(column) for column in columns], files["grid"])
    return {k: str(v) for k, v in files.items()}
