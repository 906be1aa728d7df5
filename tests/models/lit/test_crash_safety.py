"""Crash safety: atomic checkpoint writes, SIGKILL-and-resume equals an uninterrupted run, NaN stops.

The resume test runs ``train.py fit --config configs/spade_shapes.yaml`` (tiny overrides, CPU,
``deterministic``) three times in subprocesses: an uninterrupted reference, a victim that is
SIGKILLed mid-epoch after its first checkpoint appeared, and the victim resumed from its
``last.ckpt`` with ``--ckpt_path``.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from models.lit.crash_safety import AtomicCheckpointIO, RNGState
from models.weights import WeightsFileError, atomic_save, read_weights
from tests.models.lit.train_runs import CONFIGS, spawn_train, wait_for_marker


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_writes_atomically_and_resumes_exactly(config: Path) -> None:
    trainer = yaml.safe_load(config.read_text())["trainer"]
    assert {"class_path": "models.lit.crash_safety.AtomicCheckpointIO"} in trainer["plugins"]
    assert {"class_path": "models.lit.crash_safety.RNGState"} in trainer["callbacks"]


# ---------------------------------------------------------------- atomic writes
def _die_in_child(write: Callable[[object, Path], object], path: Path, sabotage: str) -> int:
    """Fork; in the child, SIGKILL itself in the middle of ``write(new, path)``; return its status."""
    pid = os.fork()
    if pid == 0:  # child: never returns
        real_save = torch.save

        def half_then_die(obj: object, f: object) -> None:
            buffer = io.BytesIO()
            real_save(obj, buffer)
            data = buffer.getvalue()
            if isinstance(f, (str, Path)):
                f = open(f, "wb")  # the process dies holding it
            f.write(data[: len(data) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        if sabotage == "during torch.save":
            torch.save = half_then_die
        else:  # all bytes written, killed before the rename
            os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        try:
            write({"version": 2, "weights": torch.ones(50_000)}, path)
        finally:
            os._exit(3)  # only reached if the kill did not happen
    return os.waitpid(pid, 0)[1]


@pytest.mark.parametrize("sabotage", ["during torch.save", "before the rename"])
def test_a_kill_during_an_atomic_write_leaves_the_previous_checkpoint(tmp_path: Path, sabotage: str) -> None:
    path = tmp_path / "last.ckpt"
    atomic_save({"version": 1, "weights": torch.zeros(50_000)}, path)
    status = _die_in_child(atomic_save, path, sabotage)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert read_weights(path)["version"] == 1
    leftover = [p.name for p in tmp_path.iterdir() if p.name != "last.ckpt"]
    assert len(leftover) == 1 and leftover[0].startswith(".last.ckpt.")


def test_control_a_kill_during_a_plain_torch_save_corrupts_the_file(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    torch.save({"version": 1, "weights": torch.zeros(50_000)}, path)
    status = _die_in_child(lambda obj, p: torch.save(obj, p), path, "during torch.save")
    assert os.WTERMSIG(status) == signal.SIGKILL
    with pytest.raises(WeightsFileError, match="not a complete PyTorch file"):
        read_weights(path)


def test_checkpoint_io_round_trip_and_remote_paths_fall_back(tmp_path: Path) -> None:
    plugin = AtomicCheckpointIO()
    plugin.save_checkpoint({"step": torch.tensor(3)}, tmp_path / "sub" / "a.ckpt")
    assert plugin.load_checkpoint(tmp_path / "sub" / "a.ckpt")["step"] == 3
    assert os.listdir(tmp_path / "sub") == ["a.ckpt"]
    plugin.save_checkpoint({"step": 4}, f"memory://{tmp_path}/b.ckpt")  # fsspec, Lightning's writer
    assert plugin.load_checkpoint(f"memory://{tmp_path}/b.ckpt")["step"] == 4


def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    callback = RNGState()
    atomic_save({"rng": callback.state_dict()}, tmp_path / "rng.ckpt")
    expected = (random.random(), float(np.random.rand()), torch.rand(2))
    callback.load_state_dict(read_weights(tmp_path / "rng.ckpt")["rng"])
    got = (random.random(), float(np.random.rand()), torch.rand(2))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


# ---------------------------------------------------------------- SIGKILL and resume
class Freeze(pl.Callback):
    """Used by the victim run: in epoch 1 (after the epoch-0 checkpoint), signal and wait to be killed."""

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object,
                             batch_idx: int) -> None:
        if trainer.current_epoch == 1 and batch_idx == 1:
            (Path(trainer.default_root_dir) / "frozen").touch()
            time.sleep(600)


_TINY = ["--trainer.max_epochs=2", "--trainer.deterministic=true", "--trainer.enable_progress_bar=false",
         "--model.init_args.ngf=4", "--model.init_args.ndf=4", "--model.init_args.num_D=1",
         "--model.init_args.n_layers_D=2", "--data.init_args.crop_size=32", "--data.init_args.num_train=8",
         "--data.init_args.num_val=2", "--data.init_args.batch_size=2"]


def _train(root: Path, *extra: str) -> subprocess.Popen:
    return spawn_train(root, "fit", "--config", "configs/spade_shapes.yaml", *_TINY,
                       f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}", *extra)


def _finish(process: subprocess.Popen, root: Path) -> None:
    assert process.wait(timeout=240) == 0, (root / "log.txt").read_text()[-3000:]


def _last(root: Path) -> Path:
    return max(root.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    reference = _train(tmp_path / "reference")
    victim_root = tmp_path / "victim"
    victim = _train(victim_root, "--trainer.callbacks+=tests.models.lit.test_crash_safety.Freeze")
    wait_for_marker(victim, victim_root / "frozen", "the victim run never reached epoch 1")
    saved = _last(victim_root)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    killed_at = read_weights(saved)
    assert (killed_at["epoch"], killed_at["global_step"]) == (0, 8)  # 4 batches x (G step + D step)

    _finish(_train(victim_root, f"--ckpt_path={saved}"), victim_root)
    _finish(reference, tmp_path / "reference")
    resumed, uninterrupted = read_weights(_last(victim_root)), read_weights(_last(tmp_path / "reference"))
    assert resumed["global_step"] == uninterrupted["global_step"] == 16
    assert resumed["state_dict"].keys() == uninterrupted["state_dict"].keys()
    for key, value in uninterrupted["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    for a, b in zip(resumed["optimizer_states"], uninterrupted["optimizer_states"]):
        for state_a, state_b in zip(a["state"].values(), b["state"].values()):
            assert all(torch.equal(state_a[k], state_b[k]) for k in state_b)
    assert not torch.equal(killed_at["state_dict"]["generator.conv_img.weight"],
                           uninterrupted["state_dict"]["generator.conv_img.weight"])


# ---------------------------------------------------------------- non-finite losses
def test_a_nan_loss_stops_style_transfer_training_and_keeps_the_last_checkpoint(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path, monkeypatch) -> None:
    from models.data.style_folders import ContentStyleDataModule
    from models.lit.style_transfer import StyleTransferModule

    model = StyleTransferModule(encoder_weights=None)
    real_losses = model.losses

    def poisoned(batch: dict) -> dict:
        losses = real_losses(batch)
        if model.global_step >= 2:
            losses["style"] = losses["style"] * float("inf")
        return losses

    monkeypatch.setattr(model, "losses", poisoned)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_last=True)
    trainer = tiny_trainer(tmp_path, max_steps=5, limit_val_batches=0, callbacks=[checkpoint],
                           plugins=[AtomicCheckpointIO()])
    data = ContentStyleDataModule(synthetic=True, load_size=24, crop_size=16, batch_size=1, num_workers=0,
                                  num_val=0, samples_per_epoch=8)
    with pytest.raises(FloatingPointError, match="style became inf at step 2; training stopped before the "
                                                 "update"):
        trainer.fit(model, datamodule=data)
    last = read_weights(tmp_path / "last.ckpt")
    assert last["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
