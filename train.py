"""Train any condnorm task from a YAML config (a LightningCLI).

Examples:
    python train.py fit --config configs/spade_shapes.yaml
    python train.py fit --config configs/spade_shapes.yaml --ckpt_path runs/spade_shapes/.../last.ckpt
    python train.py fit --config configs/adain.yaml --print_config
    python train.py validate --config configs/spade_shapes.yaml --ckpt_path last.ckpt

The config names the LightningModule (``model.class_path``) and the DataModule
(``data.class_path``); every init argument of both, and of the Trainer, can be set in the
YAML or overridden on the command line (``--model.init_args.lr_g=2e-4``).

Checkpoints given with ``--ckpt_path`` are read with ``torch.load(weights_only=True)`` (tensors
and plain containers only; a file that would run code is refused), and their hyperparameters
may only name this project's classes (``models.…``; anything else is refused before it is
imported). Pass ``--weights_only=false`` only for a checkpoint you trust that holds other objects.
Configs are read with a bounded YAML loader (no "billion laughs").

A user error (bad config value, missing dataset folder, bad label map, refused checkpoint or
config, a log folder that holds another run) prints one line, ``error: <file or option>: <what>
— <fix>``, and exits with status 2; add ``--traceback`` (or set ``CONDNORM_TRACEBACK=1``) for
the stack trace. Ctrl-C and SIGTERM write ``last.ckpt`` and exit with 130 / 143
(``models.lit.crash_safety.InterruptCheckpoint``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import ArgumentError
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.cli import LightningCLI

from models.app.config_files import ConfigRefusedError, install_bounded_yaml_loader
from models.app.errors import USER_ERRORS, parser_error, report_errors
from models.lit.run_folder import check_log_folders
from models.weights import read_weights, refuse_foreign_classes


class CondnormCLI(LightningCLI):
    """LightningCLI that reads checkpoints weights-only, vets their hyperparameters, one run per log folder.

    ``fit``/``validate``/``test``/``predict`` default to ``weights_only=True``.
    """

    def _parse_ckpt_path(self) -> None:
        """Lightning's reading of ``--ckpt_path`` hyperparameters; foreign classes are refused unimported."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not (ckpt_path and Path(ckpt_path).is_file()):
            return
        hparams = read_weights(ckpt_path).get("hyper_parameters", {})
        refuse_foreign_classes(hparams, ckpt_path)
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
        except ArgumentError as err:
            fix = "resume with the code that wrote the checkpoint, or start a new run"
            message = parser_error(err.message, fix)
            raise ConfigRefusedError(f"{ckpt_path}: hyper_parameters: {message}") from err

    def before_instantiate_classes(self) -> None:
        """Turn an unset ``weights_only`` (Lightning's ``None``) into ``True``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if "weights_only" in config and config["weights_only"] is None:
            config["weights_only"] = True

    def before_fit(self) -> None:
        """Refuse a new run into a log folder that holds another run's files."""
        check_log_folders(self.trainer.loggers, resuming=self.config_init["fit"].get("ckpt_path") is not None)


def _run(args: list[str] | None) -> LightningCLI:
    install_bounded_yaml_loader()
    return CondnormCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},
        args=args,
    )


def main(args: Sequence[str] | None = None) -> LightningCLI:
    """Run the CLI; ``args`` replaces ``sys.argv[1:]`` (used by the tests).

    User errors print one line and raise ``SystemExit(2)``; a run stopped by a non-finite loss or
    refused checkpoint weights prints one line and raises ``SystemExit(1)``.
    """

    def run(rest: list[str]) -> LightningCLI:
        if args is None:  # LightningCLI reads sys.argv itself (given both, it warns): drop --traceback there
            sys.argv[1:] = rest
            return _run(None)
        return _run(rest)

    return report_errors(run, sys.argv[1:] if args is None else list(args),
                         user_errors=(*USER_ERRORS, MisconfigurationException),
                         failures=(FloatingPointError,))


if __name__ == "__main__":
    main()
