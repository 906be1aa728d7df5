"""The evaluation protocol of a mask-to-image generator over held-out (label, real image) pairs.

:func:`evaluate` generates ``num_samples`` images per label map (image ``j`` of sample ``k`` draws
its noise / latent with seed ``seed + k·N + j``, so results do not depend on batching) and measures:

- ``class_color_error``: :func:`models.metrics.class_color_error` of every generation against its
  real image (mean over images and samples; 0 = the same mean colour in every class region);
- ``miou`` / ``pixel_accuracy``: how well a segmenter recovers the label map from the generated
  images (confusion matrix over all generations; mIoU over the classes present in the labels,
  don't-care pixels not counted), when a ``segmenter`` is given; ``class_iou`` lists each class's
  IoU (``None`` for a class absent from the labels), ``class_area_ratio`` the pixels segmented as
  each class over its mask pixels (above 1: the generator paints that class larger than its mask)
  and ``confusion`` the pixel counts (row: the label's class, column: the segmenter's);
- ``real_miou`` / ``real_pixel_accuracy``: the same segmenter on the real images of the same masks,
  the ceiling a generator can reach under it (a generator near it is limited by the segmenter,
  not by itself), with their ``real_class_iou``, ``real_class_area_ratio`` and ``real_confusion``;
- ``pixel_diversity``: mean absolute pixel difference (images in [0, 1]) between the
  ``num_samples`` generations of one mask (all pairs), averaged over masks; exactly 0 for a
  deterministic generator; needs no network, so it is always measured when ``num_samples > 1``;
- ``lpips_diversity``: the same with LPIPS distances (the field's multi-modality measure); when an
  ``lpips`` module is given;
- ``fid`` / ``kid_mean`` / ``kid_std``: torchmetrics FID and KID of all generations against the real
  images, with a local Inception weights file (``fid_weights``, torch-fidelity's format).

Metrics that were not asked for are ``None``. With ``out`` the report is written as
``report.json`` and ``report.md`` (Markdown tables: the metrics, then per class) with a comparison grid ``grid.png``
(mask │ samples │ real, one row per mask; a deterministic generator shows one sample, since its
samples are identical). :func:`compare` evaluates several generators on the same masks and seeds
and writes one report and one grid for all (e.g. mask │ SPADE │ OASIS s1 │ OASIS s2 │ real).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
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

__all__ = ["METRICS", "class_table", "compare", "evaluate", "markdown_table", "write_report"]

METRICS = ("class_color_error", "miou", "pixel_accuracy", "real_miou", "real_pixel_accuracy", "pixel_diversity",
           "lpips_diversity", "fid", "kid_mean", "kid_std")
"""The metric keys of :func:`evaluate`'s result, in report order."""

Segmenter = Callable[[Tensor], Tensor]
ImageInput = str | Path | Tensor
Sample = tuple[LabelInput, ImageInput] | tuple[LabelInput, ImageInput, LabelInput | None]


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


GridRow = tuple[Tensor, list[Tensor], Tensor]
"""One row of the comparison grid: training ids ``(H, W)``, the generations, the real image."""


def _mean_pairwise(fakes: Sequence[Tensor], distance: Callable[[Tensor, Tensor], float]) -> float:
    pairs = [distance(a, b) for a, b in combinations(fakes, 2)]
    return sum(pairs) / len(pairs)


@torch.inference_mode()
def evaluate(model: MaskToImage, samples: Iterable[Sample], *,
             segmenter: Segmenter | None = None, num_samples: int = 2, seed: int = 0, lpips: nn.Module | None = None,
             fid_weights: str | Path | None = None, out: str | Path | None = None, batch_size: int = 4,
             grid_rows: int = 8) -> dict[str, Any]:
    """Evaluate ``model`` on held-out ``(label, real image)`` pairs (see the module docstring).

    Args:
        model: the generator and its label contract.
        samples: ``(label, image)`` pairs: label files or ``(H, W)`` stored-id tensors (read through
            the model's label contract), image files or ``(3, H, W)`` tensors in [0, 1] (resized to
            the label map's size if they differ); or ``(label, image, instance)`` triples with the
            instance maps (files or ``(H, W)`` tensors) of generators with instance edges, for every
            sample (without them the class boundaries stand in, as in :meth:`MaskToImage.generate`).
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
        ``seed``, ``model``, with a segmenter ``class_iou``, ``class_area_ratio``, ``confusion`` and
        their ``real_`` counterparts and, with ``out``, ``files``.

    Raises:
        ValueError: for no samples, ``num_samples < 1``, label maps that break the contract, or a
            segmenter whose output does not fit; FileNotFoundError for missing files.
    """
    report, grid = _measure(model, _pairs(samples), segmenter=segmenter, num_samples=num_samples,
                            seed=seed, lpips=lpips, fid_weights=fid_weights, batch_size=batch_size,
                            grid_rows=grid_rows)
    if out is not None:
        report["files"] = write_report({model.source: report}, out, {"sample": (model, grid)})
    return report


@torch.inference_mode()
def compare(models: Mapping[str, MaskToImage], samples: Iterable[Sample], *,
            out: str | Path | None = None, **options: Any) -> dict[str, dict[str, Any]]:
    """:func:`evaluate` several generators on the same pairs and seeds; one report and one grid for all.

    Args:
        models: name → generator (the names head the report's columns and the grid's).
        samples: as for :func:`evaluate`.
        out: folder for ``report.json`` (``{"models": {name: report}}``), ``report.md`` (one
            column per model) and ``grid.png`` (mask │ each model's samples │ real).
        **options: ``segmenter``, ``num_samples``, ``seed``, ``lpips``, ``fid_weights``,
            ``batch_size``, ``grid_rows`` of :func:`evaluate`.

    Returns:
        ``{name: report}``, each as :func:`evaluate` returns it.
    """
    if not models:
        raise ValueError("compare: no models given")
    pairs = _pairs(samples)
    measured = {name: _measure(model, pairs, **options) for name, model in models.items()}
    reports = {name: report for name, (report, _) in measured.items()}
    if out is not None:
        files = write_report(reports, out, {name: (models[name], grid) for name, (_, grid) in measured.items()})
        for report in reports.values():
            report["files"] = files
    return reports


def _pairs(samples: Iterable[Sample]) -> list[tuple[LabelInput, ImageInput, LabelInput | None]]:
    """``(label, image, instance or None)`` triples; instance maps for all samples or for none."""
    triples = [(*sample, None) if len(sample) == 2 else tuple(sample) for sample in samples]
    if not triples:
        raise ValueError("evaluate: no (label, image) pairs given")
    if any(len(t) != 3 for t in triples):
        raise ValueError("evaluate: give (label, image) or (label, image, instance) samples")
    with_instances = sum(t[2] is not None for t in triples)
    if with_instances not in (0, len(triples)):
        raise ValueError(f"evaluate: {with_instances} of {len(triples)} samples have an instance map; give one "
                         "for every sample or for none")
    return triples


def _measure(model: MaskToImage, pairs: Sequence[tuple[LabelInput, ImageInput, LabelInput | None]], *,
             segmenter: Segmenter | None = None, num_samples: int = 2, seed: int = 0, lpips: nn.Module | None = None,
             fid_weights: str | Path | None = None, batch_size: int = 4,
             grid_rows: int = 8) -> tuple[dict[str, Any], list[GridRow]]:
    """The metrics of :func:`evaluate` and the first ``grid_rows`` rows of its grid."""
    if num_samples < 1:
        raise ValueError(f"evaluate: num_samples must be >= 1, got {num_samples}")
    layout, count = model.layout, len(pairs)
    inception = _Inception(fid_weights, model.device) if fid_weights is not None else None
    confusion = torch.zeros(layout.label_nc, layout.label_nc, dtype=torch.long) if segmenter is not None else None
    confusion_real = torch.zeros_like(confusion) if confusion is not None else None
    ignore = layout.label_nc if layout.contain_dontcare_label else None
    color_errors: list[float] = []
    pixel_diversity: list[float] = []
    lpips_diversity: list[float] = []
    grid: list[GridRow] = []
    for start in range(0, count, batch_size):
        chunk = pairs[start:start + batch_size]
        ids = [model.read_labels(label) for label, _, _ in chunk]  # each file read once, through the contract
        instances = [model.read_instance(i) for _, _, i in chunk] if chunk[0][2] is not None else None
        generations = [model.generate_ids(ids, instances, seed=seed + k * count + start) for k in range(num_samples)]
        for j, ((_, image, _), label) in enumerate(zip(chunk, ids)):
            real = _real_image(image, tuple(label.shape))
            fakes = [generations[k][j].cpu() for k in range(num_samples)]
            if inception is not None:
                inception.update(real.to(model.device), real=True)
            for fake in fakes:
                color_errors.append(float(class_color_error(fake[None] * 2 - 1, real[None] * 2 - 1, label[None],
                                                            layout.num_ids)))
                if confusion is not None:
                    predicted = _segment(segmenter, fake.to(model.device), layout.label_nc)
                    confusion += confusion_matrix(predicted, label, layout.label_nc, ignore_index=ignore)
                if inception is not None:
                    inception.update(fake.to(model.device), real=False)
            if confusion_real is not None:
                predicted = _segment(segmenter, real.to(model.device), layout.label_nc)
                confusion_real += confusion_matrix(predicted, label, layout.label_nc, ignore_index=ignore)
            if num_samples > 1:
                pixel_diversity.append(_mean_pairwise(fakes, lambda a, b: float((a - b).abs().mean())))
                if lpips is not None:
                    lpips_diversity.append(_mean_pairwise(
                        fakes, lambda a, b: float(lpips(a[None].to(model.device) * 2 - 1,
                                                        b[None].to(model.device) * 2 - 1).mean())))
            if len(grid) < grid_rows:
                grid.append((label, fakes, real))
    report: dict[str, Any] = dict.fromkeys(METRICS)
    report["class_color_error"] = sum(color_errors) / len(color_errors)
    if confusion is not None and confusion_real is not None:
        scores, real_scores = segmentation_scores(confusion), segmentation_scores(confusion_real)
        report["miou"], report["pixel_accuracy"] = scores["miou"], scores["pixel_accuracy"]
        report["real_miou"], report["real_pixel_accuracy"] = real_scores["miou"], real_scores["pixel_accuracy"]
        for prefix, found in (("", scores), ("real_", real_scores)):
            for key in ("class_iou", "class_area_ratio"):
                report[prefix + key] = [None if math.isnan(v) else v for v in found[key]]
        report["confusion"], report["real_confusion"] = confusion.tolist(), confusion_real.tolist()
    if pixel_diversity:
        report["pixel_diversity"] = sum(pixel_diversity) / len(pixel_diversity)
    if lpips_diversity:
        report["lpips_diversity"] = sum(lpips_diversity) / len(lpips_diversity)
    if inception is not None:
        report.update(inception.compute(count))
    report.update(num_images=count, num_samples=num_samples, seed=seed, model=model.source)
    return report, grid


def markdown_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """The metrics of one or more reports as a Markdown table, one column per model (``—``: not measured).

    Example:
        >>> print(markdown_table({"spade": {"class_color_error": 0.25, "miou": None},
        ...                       "oasis": {"class_color_error": 0.125, "miou": 0.5}}))
        | metric | spade | oasis |
        |---|---|---|
        | class_color_error | 0.2500 | 0.1250 |
        | miou | — | 0.5000 |
    """
    names = list(reports)
    rows = [f"| metric | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    keys = [k for k in METRICS if any(k in report for report in reports.values())]
    for key in keys:
        values = [reports[name].get(key) for name in names]
        cells = ["—" if v is None or not math.isfinite(v) else f"{v:.4f}" for v in values]
        rows.append(f"| {key} | {' | '.join(cells)} |")
    return "\n".join(rows)


def class_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """Per-class IoU and area ratio of each model and of the real images as a Markdown table ("" without a segmenter).

    The real images' columns come from the first report (every report scores the same masks).

    Example:
        >>> print(class_table({"oasis": {"class_iou": [0.5, None], "class_area_ratio": [1.25, None],
        ...                              "real_class_iou": [0.75, None], "real_class_area_ratio": [1.0, None]}}))
        | class | oasis IoU | oasis area | real IoU | real area |
        |---|---|---|---|---|
        | 0 | 0.5000 | 1.2500 | 0.7500 | 1.0000 |
    """
    first = next(iter(reports.values()))
    if first.get("class_iou") is None:
        return ""
    columns = {f"{name} {title}": report[key] for name, report in reports.items()
               for title, key in (("IoU", "class_iou"), ("area", "class_area_ratio"))}
    columns.update({"real IoU": first["real_class_iou"], "real area": first["real_class_area_ratio"]})
    rows = [f"| class | {' | '.join(columns)} |", "|---|" + "---|" * len(columns)]
    for c in range(len(first["class_iou"])):
        if first["class_iou"][c] is not None:  # absent from the labels: not scored
            rows.append(f"| {c} | " + " | ".join(f"{values[c]:.4f}" for values in columns.values()) + " |")
    return "\n".join(rows)


def write_report(reports: Mapping[str, dict[str, Any]], out: str | Path,
                 grids: Mapping[str, tuple[MaskToImage, Sequence[GridRow]]]) -> dict[str, str]:
    """Write ``report.json``, ``report.md`` and ``grid.png`` for one or more evaluated models.

    ``report.json`` is the report itself for one model and ``{"models": {name: report}}`` for
    several. The grid's columns are the mask, then each model's samples (one column for a
    deterministic model), then the real image, titled; tiles at the first model's output size.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "report.json", "markdown": out / "report.md", "grid": out / "grid.png"}
    names = ", ".join(f"{name} ({report['model']})" if name != report["model"] else name
                      for name, report in reports.items())
    first = next(iter(reports.values()))
    header = (f"Evaluation of {names}: {first['num_images']} mask(s) × {first['num_samples']} sample(s), "
              f"seed {first['seed']}\n\n")
    listed = {k: str(v) for k, v in files.items()}
    record = {**first, "files": listed} if len(reports) == 1 else {"models": dict(reports), "files": listed}
    atomic_write(files["json"], lambda f: f.write(json.dumps(record, indent=2).encode()))
    markdown = header + markdown_table(reports) + "\n"
    if per_class := class_table(reports):
        markdown += f"\nPer class (area: pixels segmented as the class / its mask pixels):\n\n{per_class}\n"
    atomic_write(files["markdown"], lambda f: f.write(markdown.encode()))
    models = list(grids.values())
    size, num_ids = models[0][0].output_size, models[0][0].layout.num_ids
    rows = models[0][1]
    columns: list[list[Tensor]] = [[colorize_labels(resize_ids(label, size)[None], num_ids)[0] for label, _, _ in rows]]
    titles = ["mask"]
    for name, (model, grid) in grids.items():
        shown = len(grid[0][1]) if model.stochastic else 1
        for k in range(shown):
            columns.append([resize_image(fakes[k], size) for _, fakes, _ in grid])
            titles.append(f"{name} s{k + 1}" if shown > 1 else name)
    columns.append([resize_image(real, size) for _, _, real in rows])
    titles.append("real")
    save_grid([torch.stack(column) for column in columns], files["grid"], titles=titles)
    return listed
