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
and plain containers only; a file that would run code is refused). Pass ``--weights_only=false``
only for a checkpoint you trust that holds other objects.
"""

from __future__ import annotations

from pytorch_lightning.cli import LightningCLI


class CondnormCLI(LightningCLI):
    """LightningCLI whose ``fit``/``validate``/``test``/``predict`` default to ``weights_only=True``."""

    def before_instantiate_classes(self) -> None:
        """Turn an unset ``weights_only`` (Lightning's ``None``) into ``True``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if "weights_only" in config and config["weights_only"] is None:
            config["weights_only"] = True


def main(args: list[str] | None = None) -> LightningCLI:
    """Run the CLI; ``args`` replaces ``sys.argv[1:]`` (used by the tests)."""
    return CondnormCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
