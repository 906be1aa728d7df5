"""SDM training (models.lit.diffusion): mask dropping, EMA, the loss falling, Lightning fit, bf16, checkpoints."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from models.app.checkpoint import load_generator
from models.data.label_layout import LabelLayout
from models.data.semantic_datamodule import SemanticDataModule
from models.lit.diffusion import DiffusionModule, drop_masks, output_size
from models.lit.ema import ema_update
from models.sdm import DDIMSampler

UNET = {"model_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_ds": [2], "head_channels": 8,
        "num_groups": 4, "spade_hidden": 8}
LAYOUT = LabelLayout(6, use_instance=True, dataset_mode="shapes")


def _module(**kw: Any) -> DiffusionModule:
    args = dict(crop_size=16, aspect_ratio=1.0, unet=UNET, sample_steps=2, **LAYOUT.to_dict())
    return DiffusionModule(**{**args, **kw})


def _batch(n: int = 4, size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 6, (n, size, size), generator=gen)
    colours = torch.rand(6, 3, generator=gen) * 2 - 1
    return {"label": label, "image": colours[label].permute(0, 3, 1, 2).contiguous()}


def test_mask_drop_rate_over_10000_draws() -> None:
    gen = torch.Generator().manual_seed(0)
    dropped = drop_masks(torch.ones(10000, 1, 1, 1), 0.2, gen).flatten() == 0
    rate = dropped.float().mean().item()
    # 0.2 ± 4 standard deviations of a binomial proportion (sd = 0.004)
    assert abs(rate - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 10000)
    masks = torch.rand(8, 3, 2, 2) + 0.5
    out = drop_masks(masks, 0.5, torch.Generator().manual_seed(1))
    for m, o in zip(masks, out):  # every sample is kept whole or zeroed whole
        assert torch.equal(o, m) or torch.equal(o, torch.zeros_like(m))


def test_ema_update_moves_floats_by_one_minus_decay_and_copies_integer_buffers() -> None:
    ema, live = nn.BatchNorm2d(2), nn.BatchNorm2d(2)
    with torch.no_grad():
        ema.weight.fill_(1.0)
        live.weight.fill_(3.0)
        live.num_batches_tracked.fill_(7)
    ema_update(ema, live, 0.75)
    torch.testing.assert_close(ema.weight, torch.full((2,), 1.5))
    assert int(ema.num_batches_tracked) == 7


def test_output_size_follows_crop_and_aspect() -> None:
    assert output_size({"crop_size": 32, "aspect_ratio": 1.0}) == (32, 32)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_training_steps_on_one_batch_decrease_the_loss(prediction: str) -> None:
    torch.manual_seed(0)
    module = _module(prediction=prediction, schedule="cosine", drop_rate=0.0)
    batch = _batch()
    mask = module.layout.encode(batch["label"])
    opt = torch.optim.Adam(module.denoiser.parameters(), lr=3e-3)

    def fixed_loss() -> float:
        with torch.no_grad():
            return module.diffusion_loss(batch["image"], mask, torch.Generator().manual_seed(123)).item()

    before = fixed_loss()
    for step in range(25):
        loss = module.diffusion_loss(batch["image"], mask, torch.Generator().manual_seed(step % 5))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert fixed_loss() < 0.9 * before


def test_bad_hyperparameters_are_refused() -> None:
    with pytest.raises(ValueError, match="drop_rate"):
        _module(drop_rate=1.5)
    with pytest.raises(ValueError, match="schedule must be one of"):
        _module(schedule="sigmoid")
    with pytest.raises(ValueError, match="lr"):
        _module(lr=float("nan"))
    with pytest.raises(ValueError, match="multiples of 2"):
        _module(crop_size=15)


def test_fit_takes_the_layout_from_the_data_writes_grids_and_a_loadable_checkpoint(
        tmp_path: Path, tiny_trainer: Callable[..., pl.Trainer]) -> None:
    from models.lit.callbacks import SampleGrids

    data = SemanticDataModule("shapes", crop_size=16, num_train=8, num_val=4, batch_size=4, num_workers=0)
    module = DiffusionModule(unet=UNET, sample_steps=2, ema_decay=0.5)
    trainer = tiny_trainer(tmp_path, max_steps=2, limit_val_batches=1, precision="bf16-mixed",
                           callbacks=[SampleGrids(every_n_steps=1, max_samples=2)])
    trainer.fit(module, data)
    assert module.hparams.label_nc == 6 and module.hparams.use_instance
    assert "val/class_color_error" in trainer.callback_metrics
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    ckpt = tmp_path / "sdm.ckpt"
    trainer.save_checkpoint(ckpt)
    sampler, layout = load_generator(ckpt)
    assert isinstance(sampler, DDIMSampler) and layout == module.layout
    for key, value in module.denoiser_ema.state_dict().items():  # the EMA weights are the ones loaded
        assert torch.equal(sampler.denoiser.state_dict()[key], value)
    assert sampler.output_size == (16, 16) and sampler.steps == 2 and sampler.guidance == 1.5
