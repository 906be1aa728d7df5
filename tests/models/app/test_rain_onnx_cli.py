"""``infer.py rain --onnx``: exported generator and encoder give the image of ``--checkpoint``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

import infer
from models.app.checkpoint import load_generator
from models.sean.codes import RegionCodes
from tests.models.app.export_cases import rain_checkpoint
from tests.models.data.data_files import write_ids, write_image

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


def _checkpoint(tiny_trainer: Callable[..., pl.Trainer], root: Path) -> tuple[Path, int]:
    ckpt = rain_checkpoint(tiny_trainer, root, perturb=0.3)
    return ckpt, load_generator(ckpt)[0].label_nc


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.float64) / 255


def test_onnx_backend_gives_the_checkpoint_image(tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path) -> None:
    ckpt, label_nc = _checkpoint(tiny_trainer, tmp_path)
    export = ["export", "--checkpoint", str(ckpt), "--task", "rain", "--format", "onnx"]
    assert infer.main([*export, "--out", str(tmp_path / "g.onnx")]) == 0
    assert infer.main([*export, "--part", "encoder", "--out", str(tmp_path / "e.onnx")]) == 0

    rng = np.random.default_rng(0)
    target = write_ids(tmp_path / "target.png", rng.integers(0, label_nc, (40, 36)))
    ref_ids = np.zeros((32, 32), dtype=np.int64)
    ref_ids[8:24, 4:20] = 1  # the reference has regions 0 and 1 only: the others fall back
    ref_mask = write_ids(tmp_path / "ref_mask.png", ref_ids)
    ref, other = write_image(tmp_path / "ref.png", 32, 32, 1), write_image(tmp_path / "other.png", 24, 28, 2)
    common = ["rain", "--labels", str(target), "--style", str(ref), "--style-labels", str(ref_mask),
              "--style-for", f"2={other}", "--seed", "3"]
    assert infer.main([*common, "--checkpoint", str(ckpt), "--codes-out", str(tmp_path / "pt.pt"),
                       "--out", str(tmp_path / "pt")]) == 0
    onnx = ["--onnx", str(tmp_path / "g.onnx"), "--onnx-encoder", str(tmp_path / "e.onnx")]
    assert infer.main([*common, *onnx, "--codes-out", str(tmp_path / "onnx.pt"),
                       "--out", str(tmp_path / "onnx")]) == 0

    expected, got = RegionCodes.load(tmp_path / "pt.pt"), RegionCodes.load(tmp_path / "onnx.pt")
    assert torch.equal(got.present, expected.present) and not expected.present[3:].any()
    torch.testing.assert_close(got.codes, expected.codes, rtol=0, atol=1e-3)
    a, b = _png(tmp_path / "pt" / "target.png"), _png(tmp_path / "onnx" / "target.png")
    assert a.shape == (40, 36, 3) and np.abs(a - b).max() <= 2 / 255
    # A different seed changes the noise, so the comparison above can fail.
    assert infer.main([*common[:-1], "4", "--checkpoint", str(ckpt), "--out", str(tmp_path / "s4")]) == 0
    assert np.abs(_png(tmp_path / "s4" / "target.png") - a).max() > 2 / 255

    # Codes from a file need no encoder.
    onnx_only = ["rain", "--labels", str(target), "--onnx", str(tmp_path / "g.onnx"), "--seed", "3"]
    assert infer.main([*onnx_only, "--codes", str(tmp_path / "pt.pt"), "--out", str(tmp_path / "c")]) == 0
    assert np.abs(_png(tmp_path / "c" / "target.png") - a).max() <= 2 / 255

    with pytest.raises(ValueError, match=r"exactly one of --checkpoint .* or --onnx"):
        infer.main([*onnx_only, "--checkpoint", str(ckpt), "--codes", str(tmp_path / "pt.pt"), "--out", "x"])
    with pytest.raises(ValueError, match=r"need the style encoder: with an \.onnx generator pass --onnx-encoder"):
        infer.main([*onnx_only, "--style", str(ref), "--out", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="exported for task 'rain', expected rain-encoder"):
        infer.main([*onnx_only, "--onnx-encoder", onnx[1], "--style", str(ref), "--out", "x"])
