"""``infer.py evaluate``: the evaluation protocol (:func:`~models.app.evaluation.evaluate`) as a command.

Label maps, real images and (``--instances``) instance maps are paired by relative path and stem
(``labels/a/x.png`` with ``images/a/x.jpg``), labels are read through the model's label contract, and the report
(``report.json``, ``report.md``) and the comparison grid (``grid.png``) go to ``--out``; the
Markdown table is printed. Several ``--checkpoint`` files are evaluated on the same masks and
seeds into one report and one grid (``--names`` heads their columns). Every option and file is
checked before a model runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.data.io import image_size
from models.data.layouts import find_custom
from models.metrics import optional_lpips

from ..evaluation import compare, markdown_table
from ..mask_to_image import MaskToImage
from ..shapes_segmenter import load_segmenter, shapes_segmenter
from .options import positive_int

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``infer.py evaluate``."""
    parser.add_argument("--checkpoint", required=True, nargs="+",
                        help="the generator: Lightning .ckpt, exported .safetensors or .onnx file; several to "
                             "compare them on the same masks and seeds")
    parser.add_argument("--names", nargs="+", help="one name per --checkpoint for the report and the grid "
                                                   "(default: the file names)")
    parser.add_argument("--labels", required=True, help="folder of held-out label maps (searched recursively)")
    parser.add_argument("--images", required=True, help="folder of the real images, paired with the label maps "
                                                      "by relative path and stem")
    parser.add_argument("--instances", help="folder of instance maps paired by relative path and stem "
                                            "(instance-edge models; without it the class boundaries stand in)")
    segmenter = parser.add_mutually_exclusive_group()
    segmenter.add_argument("--segmenter", help="TorchScript segmenter (images (N,3,H,W) in [0,1] -> logits "
                                               "(N,classes,H,W)) for mIoU and pixel accuracy")
    segmenter.add_argument("--shapes-segmenter", action="store_true",
                           help="train the built-in shapes segmenter (seconds, offline, at the first label map's size) "
                                "for the shapes demo")
    parser.add_argument("--samples", type=positive_int, default=2, help="generations per mask (different seeds)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--lpips", action="store_true",
                        help="measure LPIPS diversity (AlexNet weights must be in torch's hub cache)")
    parser.add_argument("--fid-weights", help="local torch-fidelity Inception weights file: adds FID and KID")
    parser.add_argument("--out", default="evaluation", help="folder for report.json, report.md and grid.png")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--device", default="cpu")


def _names(args: argparse.Namespace) -> list[str]:
    if args.names is not None:
        if len(args.names) != len(args.checkpoint) or len(set(args.names)) != len(args.names):
            raise ValueError(f"--names: give {len(args.checkpoint)} distinct name(s), one per --checkpoint, "
                             f"got {args.names}")
        return list(args.names)
    stems = [Path(c).stem for c in args.checkpoint]
    return [f"{stem} ({i + 1})" if stems.count(stem) > 1 else stem for i, stem in enumerate(stems)]


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint(s) on the paired folders; print the table; returns 0."""
    for option, values in (("--checkpoint", args.checkpoint), ("--segmenter", [args.segmenter]),
                           ("--fid-weights", [args.fid_weights])):
        for value in values:
            if value is not None and not Path(value).is_file():
                raise FileNotFoundError(f"{option} {value} does not exist")
    names = _names(args)
    out = Path(args.out)
    if out.is_file():
        raise ValueError(f"--out {out} is a file; give a folder")
    pairs = find_custom(args.images, args.labels, args.instances)
    segmenter = load_segmenter(args.segmenter, args.device) if args.segmenter else None
    models = {name: MaskToImage.load(path, device=args.device) for name, path in zip(names, args.checkpoint)}
    if args.shapes_segmenter:
        segmenter = shapes_segmenter(image_size(pairs[0].label)).to(args.device)  # trained at the labels' size
    if args.instances is None and any(model.layout.use_instance for model in models.values()):
        print("note: a model takes instance edges and no --instances folder was given: the class boundaries "
              "stand in for the instance boundaries")
    lpips = optional_lpips() if args.lpips else None
    if lpips is not None:
        lpips = lpips.to(args.device)
    options = dict(segmenter=segmenter, num_samples=args.samples, seed=args.seed, lpips=lpips,
                   fid_weights=args.fid_weights, batch_size=args.batch_size)
    samples = [(p.label, p.image, p.instance) for p in pairs]
    reports = compare(models, samples, out=out, **options)  # one model too: the report and grid use its name
    report = next(iter(reports.values()))
    print(markdown_table(reports))
    print(f"wrote {report['files']['json']}, {report['files']['markdown']} and {report['files']['grid']}")
    return 0
