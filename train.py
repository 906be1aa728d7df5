"""Train any condnorm task from a YAML config (a LightningCLI).

Examples:
    python train.py fit --config configs/spade_shapes.yaml
    python train.py fit --config configs/spade_shapes.yaml --ckpt_path runs/spade_shapes/.../last.ckpt
    python train.py fit --config configs/adain.yaml --print_config
    python train.py validate --config configs/spade_shapes.yaml --ckpt_path last.ckpt

The config names the LightningModule (``model.class_path``) and the DataModule
(``data.class_path``); every init argument of both, and of the Trainer, can be set in the
YAML or overridden on the command line (``--model.init_args.lr_g=2e-4``).
"""

from __future__ import annotations

from pytorch_lightning.cli import LightningCLI


def main(args: list[str] | None = None) -> LightningCLI:
    """Run the CLI; ``args`` replaces ``sys.argv[1:]`` (used by the tests)."""
    return LightningCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
