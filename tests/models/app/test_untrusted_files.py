"""Untrusted weight files: a pickle that would run code is refused by every loader, without running it.

The payload is a real one: ``torch.load(weights_only=False)`` on the same file calls
:func:`_plant`, which writes the marker file (the control test). Every loader of the project
must raise instead, and the marker must never appear.
"""

from __future__ import annotations

import pickle
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import infer
import train
from models.adain import StyleTransfer
from models.adain.networks import load_weights_file
from models.app.checkpoint import load_encoder, load_generator
from models.losses import VGGPerceptualLoss
from models.metrics import optional_fid
from models.sean.codes import RegionCodes
from models.weights import WeightsFileError, read_weights


def _plant(marker: str) -> None:
    """What the malicious file runs when unpickled: it writes ``marker``."""
    Path(marker).write_text("code ran while loading a weights file")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return _plant, (self.marker,)


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``(bare.pth, lightning.ckpt, marker)``: a bare state dict and a Lightning-shaped checkpoint,
    each with the payload next to real tensors."""
    marker = tmp_path / "PWNED"
    bare, ckpt = tmp_path / "evil_net_G.pth", tmp_path / "evil.ckpt"
    torch.save({"conv_img.weight": torch.zeros(3, 4, 3, 3), "bias": _Payload(marker)}, bare)
    torch.save({"state_dict": {"generator.fc.weight": torch.zeros(2)}, "epoch": 0, "global_step": 0,
                "hyper_parameters": {"label_nc": 3, "hook": _Payload(marker)}}, ckpt)
    return bare, ckpt, marker


def test_control_the_payload_runs_when_loaded_without_weights_only(evil) -> None:
    bare, _, marker = evil
    torch.load(bare, weights_only=False)
    assert marker.read_text().startswith("code ran")


@pytest.mark.parametrize("loader", [
    pytest.param(lambda p: read_weights(p), id="read_weights"),
    pytest.param(lambda p: load_generator(p), id="spade-load_generator"),
    pytest.param(lambda p: load_encoder(p), id="spade-load_encoder"),
    pytest.param(lambda p: load_weights_file(p), id="adain-load_weights_file"),
    pytest.param(lambda p: StyleTransfer.from_official(vgg=p, decoder=p), id="adain-from_official"),
    pytest.param(lambda p: VGGPerceptualLoss(weights=str(p)), id="vgg-loss-weights"),
    pytest.param(lambda p: optional_fid(str(p)), id="fid-weights"),
])
@pytest.mark.parametrize("which", [0, 1], ids=["bare-pth", "lightning-ckpt"])
def test_every_loader_refuses_the_pickle_without_running_it(evil, loader, which) -> None:
    path, marker = evil[which], evil[2]
    with pytest.raises(WeightsFileError, match=rf"{path.name}: cannot be read: refused to unpickle it "
                                               r"\(.*_plant.*\).*weights_only=True"):
        loader(path)
    assert not marker.exists()


def test_region_codes_file_refused(evil) -> None:
    with pytest.raises(pickle.UnpicklingError, match="_plant"):
        RegionCodes.load(evil[0])
    assert not evil[2].exists()


def test_infer_checkpoints_refused(evil, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(np.full((16, 16, 3), 128, dtype=np.uint8)).save(image)
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(WeightsFileError, match="refused to unpickle"):
        infer.main(["spade", "--checkpoint", str(evil[1]), "--labels", str(tmp_path / "mask.png"),
                    "--out", str(tmp_path / "out")])
    with pytest.raises(WeightsFileError, match="refused to unpickle"):  # read as weights, never unpickled
        infer.main(["adain", "--checkpoint", str(evil[1]), "--content", str(image), "--style", str(image),
                    "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert not evil[2].exists()


_TINY_SPADE = ["--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--model.init_args.ngf=4",
               "--model.init_args.ndf=4", "--model.init_args.num_D=1", "--model.init_args.n_layers_D=2",
               "--data.init_args.crop_size=32", "--data.init_args.num_train=4", "--data.init_args.num_val=2",
               "--data.init_args.batch_size=2"]


@pytest.mark.parametrize("plugins", [[], ["--trainer.plugins=null"]], ids=["atomic-io", "lightning-io"])
def test_resume_refuses_the_pickle(evil, tmp_path: Path, monkeypatch, capsys, plugins) -> None:
    """``train.py fit --ckpt_path``: refused (one line, exit status 2) when ``train.py`` reads the
    checkpoint's hyperparameters weights-only, before the Trainer's checkpoint I/O (the configs'
    atomic one, or Lightning's) sees the file."""
    monkeypatch.setattr(sys, "argv", ["train.py"])
    args = ["fit", "--config", "configs/spade_shapes.yaml", *_TINY_SPADE, *plugins,
            f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--ckpt_path={evil[1]}"]
    with pytest.raises(SystemExit) as stop:
        train.main(args)
    assert stop.value.code == 2
    assert re.fullmatch(r"error: .*evil\.ckpt: cannot be read: refused to unpickle it \(.*_plant.*\n?",
                        capsys.readouterr().err)
    with pytest.raises(WeightsFileError, match="_plant"):  # the same error, raised with --traceback
        train.main([*args, "--traceback"])
    assert not evil[2].exists()


def test_project_checkpoints_still_load_weights_only(tmp_path: Path, monkeypatch) -> None:
    """A checkpoint written by ``train.py`` (optimizers, schedulers, callbacks, RNG states) is plain data."""
    monkeypatch.setattr(sys, "argv", ["train.py"])
    train.main(["fit", "--config", "configs/spade_shapes.yaml", *_TINY_SPADE,
                f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    last = next(tmp_path.rglob("last.ckpt"))
    ckpt = read_weights(last)
    assert ckpt["global_step"] == 4 and "RNGState" in ckpt["callbacks"]
    generator, layout = load_generator(last)
    assert layout.label_nc == 6 and not generator.training
