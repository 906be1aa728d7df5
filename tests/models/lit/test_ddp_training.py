"""The shipped SPADE config trains under Lightning DDP: 2 CPU processes, gloo, synchronised norms."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from models.weights import read_weights

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_spade_config_trains_with_two_ddp_processes_and_syncbatch(tmp_path: Path) -> None:
    args = [sys.executable, "train.py", "fit", "--config", "configs/spade_shapes.yaml",
            "--trainer.accelerator=cpu", "--trainer.devices=2",
            "--trainer.strategy=ddp_find_unused_parameters_true",  # two optimizers: D is idle in G's step
            "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--model.init_args.norm_G=syncbatch", "--model.init_args.ngf=4", "--model.init_args.ndf=4",
            "--model.init_args.num_D=1", "--model.init_args.n_layers_D=2", "--data.init_args.crop_size=32",
            "--data.init_args.num_train=8", "--data.init_args.num_val=4", "--data.init_args.batch_size=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:  # a collective that never completes: fail, don't hang CI
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"DDP run hung:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]
    ckpt = read_weights(next(tmp_path.rglob("last.ckpt")))
    # 8 samples over 2 processes, batch 2: 2 batches per process, each a G and a D step.
    assert ckpt["global_step"] == 4 and ckpt["hyper_parameters"]["norm_G"] == "syncbatch"
    assert any(k.endswith("param_free_norm.running_var") for k in ckpt["state_dict"])
    assert next(tmp_path.rglob("step_*.png")).is_file()  # sample grids under DDP (rank 0 only)
