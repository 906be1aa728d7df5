"""Inference and export entry point: one subcommand per task.

Examples:
    python infer.py spade --checkpoint runs/spade_shapes/last.ckpt --labels masks/ --out out/
    python infer.py rain --checkpoint runs/rain_shapes/last.ckpt --labels mask.png --style ref.png --out out/
    python infer.py sdm --checkpoint runs/sdm_shapes/last.ckpt --labels masks/ --out out/ --steps 50 --guidance 1.5
    python infer.py adain --content photo.jpg --style painting.jpg --out out/
    python infer.py evaluate --checkpoint run.ckpt --labels val/labels --images val/images --shapes-segmenter
    python infer.py export --checkpoint run.ckpt --task spade --format onnx --out spade.onnx
    python infer.py serve --checkpoint run.ckpt --port 7860

Run ``python infer.py <task> --help`` for each task's options. A mistake in the input is
reported as one line (``error: …``, exit status 2); ``--traceback`` shows the stack instead.
The tasks are thin shells over the Python API, :mod:`models.app`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from models.app.errors import report_errors

# subcommand -> (module providing add_arguments/run, one-line help)
TASKS = {
    "spade": ("models.app.cli.spade", "mask-to-image synthesis with a SPADE generator"),
    "rain": ("models.app.cli.rain", "mask-to-image synthesis with per-region styles (RAIN/SEAN)"),
    "sdm": ("models.app.cli.sdm", "mask-to-image by diffusion (SDM): DDIM samples with classifier-free guidance"),
    "adain": ("models.app.cli.adain", "AdaIN / AdaCoN style transfer on image pairs"),
    "evaluate": ("models.app.cli.evaluate", "evaluate a generator on held-out label/image pairs (mIoU, FID, KID, "
                                            "LPIPS diversity)"),
    "export": ("models.app.cli.export", "export a checkpoint to ONNX, TorchScript, torch.export or safetensors"),
    "serve": ("models.app.cli.serve", "the interactive editor: paint a mask, pick region styles, stylise (a local "
                                      "web app)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per task."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, (module, help_text) in TASKS.items():
        task_parser = sub.add_parser(name, help=help_text, description=help_text)
        task = importlib.import_module(module)
        task.add_arguments(task_parser)
        task_parser.set_defaults(run=task.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen task; returns the exit status (errors propagate)."""
    args = build_parser().parse_args(argv)
    return args.run(args)


def cli(argv: list[str] | None = None) -> int:
    """:func:`main` as the command line runs it: user errors as one line and exit status 2.

    A model that produces NaN/Inf exits with 1, Ctrl-C with 130 (outputs are written atomically,
    so nothing half-written is left); ``--traceback`` or ``CONDNORM_TRACEBACK=1`` shows the stack.
    """
    try:
        return report_errors(main, sys.argv[1:] if argv is None else argv, failures=(FloatingPointError,))
    except SystemExit as stop:  # report_errors' exit status, or argparse's after its usage line
        return stop.code if isinstance(stop.code, int) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
