"""Training that is never silent, loses no work and runs no code from files (docs/robustness.md, "Training").

Resume with LPIPS/FID on, no non-finite checkpoint, Ctrl-C / SIGTERM checkpoints, periodic
checkpoints in every config, one run per log folder, checkpoints that name foreign classes,
YAML bombs, one-line errors and non-finite options. Trainings use the shapes dataset at 32 px
with 4-channel networks.
"""

from __future__ import annotations

import csv
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.demos.boring_classes import BoringModel

import train
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.crash_safety import (
    AtomicCheckpointIO,
    FiniteModelCheckpoint,
    InterruptCheckpoint,
    NonFiniteCheckpointError,
)
from models.lit.mask_to_image import MaskToImageModule
from models.lit.style_transfer import StyleTransferModule
from models.weights import read_weights
from tests.models.lit.train_runs import CONFIGS, REPO, spawn_train, wait_for_marker
from tests.models.metric_stand_ins import stand_in_alexnet, stand_in_inception

TINY = ["--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false", "--model.init_args.ngf=4", "--model.init_args.ndf=4",
        "--model.init_args.num_D=1", "--model.init_args.n_layers_D=2", "--data.init_args.crop_size=32",
        "--data.init_args.num_train=4", "--data.init_args.num_val=2", "--data.init_args.batch_size=2"]


@pytest.fixture
def argv(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py"])


def _fit_args(root: Path, *extra: str) -> list[str]:
    return ["fit", "--config", "configs/spade_shapes.yaml", *TINY, f"--trainer.default_root_dir={root}",
            f"--trainer.logger.init_args.save_dir={root}", *extra]


def _user_error(capsys, *args: str) -> str:
    """Run ``train.main(args)``; assert exit status 2 and one ``error:`` line on stderr; return it."""
    with pytest.raises(SystemExit) as stop:
        train.main(list(args))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- 1. resume with LPIPS / FID on
@pytest.mark.parametrize("metric", ["lpips", "fid"])
def test_resume_with_metric_networks_on(metric: str, tmp_path: Path, monkeypatch, argv) -> None:
    if metric == "lpips":
        stand_in_alexnet(monkeypatch, tmp_path)
        on = ["--model.init_args.lpips=true"]
    else:
        stand_in_inception(monkeypatch, tmp_path / "inception.pth")
        on = [f"--model.init_args.fid_weights={tmp_path / 'inception.pth'}"]
    cli = train.main(_fit_args(tmp_path, *on))
    assert f"val/{metric}" in cli.trainer.callback_metrics  # the metric network loaded and ran
    last = next(tmp_path.rglob("last.ckpt"))
    resumed = train.main(_fit_args(tmp_path, *on, "--trainer.max_epochs=2", f"--ckpt_path={last}"))
    assert resumed.trainer.global_step == 8 and f"val/{metric}" in resumed.trainer.callback_metrics
    for path in tmp_path.rglob("*.ckpt"):
        keys = read_weights(path)["state_dict"].keys()
        assert not [k for k in keys if "lpips" in k or "fid" in k or "inception" in k], path
    assert not [k for k in resumed.model.state_dict() if "lpips" in k or "fid" in k]


# ---------------------------------------------------------------- 2. no non-finite checkpoint
def _tiny_spade(**kw) -> tuple[MaskToImageModule, SemanticDataModule]:
    model = MaskToImageModule(ngf=4, ndf=4, num_D=1, n_layers_D=2, norm_G="batch", lambda_vgg=0.0,
                              lpips=False)
    data = SemanticDataModule("shapes", crop_size=32, num_train=4, num_val=2, batch_size=2, num_workers=0,
                              **kw)
    return model, data


def _trainer(tiny_trainer: Callable[..., pl.Trainer], root: Path, max_epochs: int,
             *callbacks: pl.Callback) -> pl.Trainer:
    """Two checkpoint callbacks, as in the configs: the best epoch, and every epoch + last.ckpt."""
    best = FiniteModelCheckpoint(dirpath=root, monitor="val/class_color_error", save_top_k=1,
                                 filename="best-{epoch}")
    every_epoch = FiniteModelCheckpoint(dirpath=root, save_top_k=-1, save_last=True, filename="{epoch}",
                                        enable_version_counter=False)
    return tiny_trainer(root, max_epochs=max_epochs, callbacks=[best, every_epoch, *callbacks],
                        plugins=[AtomicCheckpointIO()])


class PoisonWeights(pl.Callback):
    """After the last optimiser step of epoch 1 the generator's weights become NaN (no loss sees it)."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object,
                           batch: object, batch_idx: int) -> None:
        if trainer.current_epoch == 1 and batch_idx == trainer.num_training_batches - 1:
            with torch.no_grad():
                pl_module.generator.conv_img.weight.fill_(float("nan"))


def test_nan_weights_never_reach_a_checkpoint_and_the_last_good_one_resumes(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    model, data = _tiny_spade()
    message = (r"epoch=1\.ckpt: not written, the weights hold NaN/Inf \(generator\.conv_img\.weight\); the "
               r"checkpoints written before are kept and training stops")
    with pytest.raises(NonFiniteCheckpointError, match=message):
        _trainer(tiny_trainer, tmp_path, 3, PoisonWeights()).fit(model, datamodule=data)
    files = sorted(p.name for p in tmp_path.glob("*.ckpt"))
    assert files == ["best-epoch=0.ckpt", "epoch=0.ckpt", "last.ckpt"]  # NaN validation: not kept as best
    for path in tmp_path.glob("*.ckpt"):
        state = read_weights(path)
        assert state["global_step"] == 4, path  # epoch 0's
        assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    model, data = _tiny_spade()
    trainer = _trainer(tiny_trainer, tmp_path, 2)
    trainer.fit(model, datamodule=data, ckpt_path=tmp_path / "last.ckpt", weights_only=True)
    assert trainer.global_step == 8


class NanMetric(BoringModel):
    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/score", torch.tensor(float("nan")))


def test_a_nan_monitored_metric_is_never_kept_as_best(tiny_trainer: Callable[..., pl.Trainer],
                                                     tmp_path: Path) -> None:
    best = FiniteModelCheckpoint(dirpath=tmp_path, monitor="val/score", save_top_k=1, filename="best")
    trainer = tiny_trainer(tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[best])
    with pytest.warns(UserWarning, match="val/score is nan: not kept as a best checkpoint"):
        trainer.fit(NanMetric())
    assert best.best_model_path == "" and not list(tmp_path.glob("*.ckpt"))


# ---------------------------------------------------------------- 3. Ctrl-C and SIGTERM
class Beacon(pl.Callback):
    """Used by the interrupted runs: touch ``<root>/stepped`` once training has taken some steps."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object,
                           batch: object, batch_idx: int) -> None:
        if trainer.global_step >= 4:
            (Path(trainer.default_root_dir) / "stepped").touch()


def _spawn(root: Path, *extra: str) -> subprocess.Popen:
    return spawn_train(root, *_fit_args(root, "--trainer.max_epochs=100", "--data.init_args.num_train=64", *extra))


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_writes_a_checkpoint_exits_non_zero_and_resumes(signum: int, status: int,
                                                                 tmp_path: Path) -> None:
    run = _spawn(tmp_path, "--trainer.callbacks+=tests.models.lit.test_training_safety.Beacon")
    wait_for_marker(run, tmp_path / "stepped", "training never took a step")
    run.send_signal(signum)
    assert run.wait(timeout=120) == status, (tmp_path / "log.txt").read_text()[-3000:]
    last = next(tmp_path.rglob("last.ckpt"))
    saved = read_weights(last)
    assert saved["epoch"] == 0 and 4 <= saved["global_step"] < 64  # mid-epoch: no epoch-end checkpoint yet
    assert f"wrote {last}" in (tmp_path / "log.txt").read_text()
    resumed = _spawn(tmp_path, f"--ckpt_path={last}", f"--trainer.max_steps={saved['global_step'] + 4}")
    assert resumed.wait(timeout=240) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    assert read_weights(max(tmp_path.rglob("last.ckpt"), key=os.path.getmtime))["global_step"] == \
        saved["global_step"] + 4


class FailingStep(BoringModel):
    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        raise ValueError("a bug in the training step")


@pytest.mark.parametrize("model", [BoringModel, FailingStep], ids=["finished", "failed"])
def test_ctrl_c_is_given_back_after_fit(tiny_trainer: Callable[..., pl.Trainer], model: type,
                                        tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)
    trainer = tiny_trainer(tmp_path, max_steps=2, enable_checkpointing=False, callbacks=[InterruptCheckpoint()])
    try:
        trainer.fit(model())
    except ValueError:
        pass
    assert signal.getsignal(signal.SIGINT) is before


# ---------------------------------------------------------------- 4. periodic checkpoints, every config
@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_checkpoints_periodically_and_on_interrupts(config: Path) -> None:
    trainer = yaml.safe_load(config.read_text())["trainer"]
    callbacks = trainer["callbacks"]
    assert {"class_path": "models.lit.crash_safety.InterruptCheckpoint"} in callbacks
    checkpoints = [c for c in callbacks if c["class_path"].endswith("ModelCheckpoint")]
    assert checkpoints and all(c["class_path"] == "models.lit.crash_safety.FiniteModelCheckpoint"
                               for c in checkpoints)
    periodic = [c["init_args"] for c in checkpoints if "train_time_interval" in c["init_args"]]
    assert len(periodic) == 1 and periodic[0]["save_last"] is True
    hours, minutes, seconds = map(int, periodic[0]["train_time_interval"].split(":"))
    assert timedelta(hours=hours, minutes=minutes, seconds=seconds) <= timedelta(minutes=30)
    assert trainer["logger"]["class_path"] == "models.lit.run_folder.CSVLogger"


class ManualSteps(BoringModel):
    """A module that steps its optimizer itself, as the GAN modules do."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(self.step(batch))
        optimizer.step()


def _periodic(root: Path, interval: timedelta, monkeypatch) -> tuple[FiniteModelCheckpoint, list[int]]:
    """The configs' periodic callback (``last.ckpt`` every ``interval`` of training, no best) and its saves' steps."""
    periodic = FiniteModelCheckpoint(dirpath=root, train_time_interval=interval, save_top_k=0, save_last=True,
                                      enable_version_counter=False)
    saved: list[int] = []
    write = periodic._save_last_checkpoint
    monkeypatch.setattr(periodic, "_save_last_checkpoint",
                        lambda trainer, candidates: (saved.append(trainer.global_step), write(trainer, candidates)))
    return periodic, saved


@pytest.mark.parametrize("model", [BoringModel, ManualSteps], ids=["automatic", "manual"])
def test_the_periodic_checkpoint_is_written_on_time_in_both_optimization_modes(
        model: type, tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path, monkeypatch) -> None:
    # Lightning 2.6 skips train_time_interval for manual optimization: it saved once, at the end (step 7)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    class Tick(pl.Callback):  # 10 minutes of training per batch
        def on_train_batch_start(self, *args: object) -> None:
            clock[0] += 600.0

    periodic, saved = _periodic(tmp_path, timedelta(minutes=25), monkeypatch)
    trainer = tiny_trainer(tmp_path, max_steps=7, limit_val_batches=0, callbacks=[Tick(), periodic])
    trainer.fit(model())
    assert saved[:2] == [3, 6]  # after 30 and 60 minutes: the first batch 25 minutes after the last save
    assert read_weights(tmp_path / "last.ckpt")["global_step"] == saved[-1]


def test_a_gan_run_refreshes_last_ckpt_periodically(tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path,
                                                    monkeypatch) -> None:
    model, data = _tiny_spade()
    assert not model.automatic_optimization
    periodic, saved = _periodic(tmp_path, timedelta(0), monkeypatch)
    tiny_trainer(tmp_path, max_steps=6, limit_val_batches=0, callbacks=[periodic]).fit(model, datamodule=data)
    assert saved[:3] == [2, 4, 6]  # after every batch (a G and a D step each), not only at the end


# ---------------------------------------------------------------- 5. log folders
def test_a_new_run_into_a_used_log_folder_is_refused(tmp_path: Path, argv, capsys) -> None:
    train.main(_fit_args(tmp_path, "--trainer.logger.init_args.version=mine"))
    folder = tmp_path / "spade_shapes" / "mine"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert {"metrics.csv", "config.yaml"} <= set(before)
    err = _user_error(capsys, *_fit_args(tmp_path, "--trainer.logger.init_args.version=mine"))
    assert err.startswith(f"error: {folder}: this log folder holds another run (checkpoints, hparams.yaml, "
                          "metrics.csv, samples) that a new run would overwrite")
    assert "another version" in err and "--ckpt_path" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_a_folder_left_by_a_failed_attempt_is_free(tmp_path: Path, argv, capsys) -> None:
    """A run that failed before training wrote only ``config.yaml``: the corrected run may use the folder."""
    version = "--trainer.logger.init_args.version=mine"
    err = _user_error(capsys, *_fit_args(tmp_path, version, f"--ckpt_path={tmp_path}/mistyped.ckpt"))
    assert err == f"error: weights file {tmp_path}/mistyped.ckpt does not exist; check the path"
    assert [p.name for p in (tmp_path / "spade_shapes" / "mine").iterdir()] == ["config.yaml"]
    train.main(_fit_args(tmp_path, version))
    assert (tmp_path / "spade_shapes" / "mine" / "metrics.csv").is_file()


def test_a_resumed_run_appends_to_its_metrics(tmp_path: Path, argv) -> None:
    version = ["--trainer.logger.init_args.version=mine", "--trainer.log_every_n_steps=1"]
    train.main(_fit_args(tmp_path, *version))
    metrics = tmp_path / "spade_shapes" / "mine" / "metrics.csv"
    first = list(csv.DictReader(metrics.open()))
    assert first
    last = tmp_path / "spade_shapes" / "mine" / "checkpoints" / "last.ckpt"
    train.main(_fit_args(tmp_path, *version, "--trainer.max_epochs=2", f"--ckpt_path={last}"))
    rows = list(csv.DictReader(metrics.open()))
    assert len(rows) > len(first)
    assert [{k: v for k, v in row.items() if v} for row in rows[:len(first)]] == \
        [{k: v for k, v in row.items() if v} for row in first]
    assert {row["epoch"] for row in rows} == {"0", "1"}


# ---------------------------------------------------------------- 6. no code from checkpoints
def test_a_checkpoint_naming_a_foreign_class_is_refused_before_import(tmp_path: Path, argv, capsys,
                                                                      monkeypatch) -> None:
    marker = tmp_path / "IMPORTED"
    module = "condnorm_planted_module"
    (tmp_path / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').write('code ran on import')\n"
                                           "class Model:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 0,
                "hyper_parameters": {"_class_path": f"{module}.Model", "ngf": 4}}, ckpt)
    read_weights(ckpt)  # plain data: passes weights_only=True
    err = _user_error(capsys, *_fit_args(tmp_path, f"--ckpt_path={ckpt}"))
    assert err == (f"error: {ckpt}: hyper_parameters._class_path names '{module}.Model', which is not a "
                   "class of this project (models.…); refused before importing it — resume only from "
                   "checkpoints written by this project's train.py")
    assert not marker.exists() and module not in sys.modules


def test_checkpoint_hyperparameters_that_do_not_fit_the_code_are_one_line(tmp_path: Path, argv,
                                                                           capsys) -> None:
    ckpt = tmp_path / "other.ckpt"
    hparams = {"_class_path": "models.lit.mask_to_image.MaskToImageModule", "ngf": "wide"}
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 0, "hyper_parameters": hparams}, ckpt)
    err = _user_error(capsys, *_fit_args(tmp_path, f"--ckpt_path={ckpt}"))
    assert err == (f"error: {ckpt}: hyper_parameters: model.init_args.ngf: Expected a <class 'int'>. Got "
                   "value: wide (models.lit.mask_to_image.MaskToImageModule) — resume with the code that "
                   "wrote the checkpoint, or start a new run")


# ---------------------------------------------------------------- 7. YAML bombs
BILLION_LAUGHS = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _limit_memory() -> None:
    """A regression fails (MemoryError) instead of eating the shared host's memory (heap, not libraries)."""
    resource.setrlimit(resource.RLIMIT_DATA, (6 << 30, 6 << 30))


def test_a_yaml_bomb_is_refused_fast(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 500
    start = time.monotonic()
    done = subprocess.run([sys.executable, "train.py", "fit", "--config", str(bomb)], cwd=REPO, timeout=120,
                          capture_output=True, text=True, preexec_fn=_limit_memory,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert time.monotonic() - start < 60
    assert done.returncode == 2, done.stderr[-2000:]
    assert re.fullmatch(r"error: \S*bomb\.yaml: the YAML expands to more than 100000 values through anchors "
                        r"and aliases \(a \"billion laughs\" file\?\) — write the values out, or use fewer "
                        r"aliases",
                        done.stderr.strip().splitlines()[-1]), done.stderr[-2000:]


# ---------------------------------------------------------------- 8. one-line errors
def test_user_errors_are_one_line_with_exit_status_2(tmp_path: Path, argv, capsys) -> None:
    missing = tmp_path / "no_such_data"
    err = _user_error(capsys, *_fit_args(tmp_path, "--data.init_args.dataset_mode=custom",
                                         f"--data.init_args.image_dir={missing}/images",
                                         f"--data.init_args.label_dir={missing}/labels",
                                         "--data.init_args.label_nc=3"))
    assert str(missing) in err and "does not exist" in err
    err = _user_error(capsys, *_fit_args(tmp_path, "--model.init_args.ngff=3"))
    assert "ngff" in err
    err = _user_error(capsys, *_fit_args(tmp_path, "--model.init_args.lr_g=-1"))
    assert err.startswith("error: model.init_args.lr_g: MaskToImageModule got -1.0")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_traceback_is_shown_on_request(how: str, tmp_path: Path, argv, monkeypatch) -> None:
    args = _fit_args(tmp_path, "--model.init_args.lr_g=-1")
    if how == "flag":
        args.append("--traceback")
    else:
        monkeypatch.setenv("CONDNORM_TRACEBACK", "1")
    with pytest.raises(ValueError, match="lr_g"):
        train.main(args)


def test_the_script_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    args = _fit_args(tmp_path, "--model.init_args.lambda_vgg=.nan")
    done = subprocess.run([sys.executable, "train.py", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: model.init_args.lambda_vgg: MaskToImageModule got nan")
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------- 9. non-finite options
@pytest.mark.parametrize(("build", "name"), [
    (lambda v: MaskToImageModule(lr_g=v), "lr_g"),
    (lambda v: MaskToImageModule(lr_d=v), "lr_d"),
    (lambda v: MaskToImageModule(lambda_feat=v), "lambda_feat"),
    (lambda v: MaskToImageModule(lambda_vgg=v), "lambda_vgg"),
    (lambda v: MaskToImageModule(lambda_kld=v), "lambda_kld"),
    (lambda v: StyleTransferModule(encoder_weights=None, lr=v), "lr"),
    (lambda v: StyleTransferModule(encoder_weights=None, lr_decay=v), "lr_decay"),
    (lambda v: StyleTransferModule(encoder_weights=None, style_weight=v), "style_weight"),
    (lambda v: StyleTransferModule(encoder_weights=None, content_weight=v), "content_weight"),
], ids=["lr_g", "lr_d", "lambda_feat", "lambda_vgg", "lambda_kld", "adain-lr", "adain-lr_decay",
        "adain-style_weight", "adain-content_weight"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0], ids=["nan", "inf", "negative"])
def test_non_finite_or_negative_rates_and_weights_are_refused(build, name: str, value: float) -> None:
    message = rf"^model\.init_args\.{name}: \w+ got {re.escape(str(value))}, it must be a finite number >= 0"
    with pytest.raises(ValueError, match=message):
        build(value)
