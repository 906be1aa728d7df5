"""Mask-to-image by diffusion: SDM (Wang et al. 2022) trained as a LightningModule.

The same data and label contract as the GAN pipeline (:class:`~models.data.semantic_datamodule.SemanticDataModule`,
:class:`~models.data.label_layout.LabelLayout`): the label map reaches the UNet as the dense one-hot
map (+ the instance-edge channel), and the all-zeros map is the "no mask" input of classifier-free
guidance. The objective is DDPM's: ``‖f(x_t, t, m) - target‖²`` with ``t`` uniform, ``target`` the
noise ``ε`` (or ``v``); the mask is replaced by zeros with probability ``drop_rate`` (SDM: 0.2).
An EMA of the denoiser samples in validation, in the sample grids and in every checkpoint reader.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.data.label_layout import LabelLayout
from models.data.palette import colorize_labels
from models.lit.crash_safety import require_finite_non_negative, stop_if_not_finite
from models.lit.ema import ema_update
from models.lit.label_contract import DATA_KEYS, LabelContractModule
from models.metrics import class_color_error
from models.sdm import PREDICTIONS, SCHEDULES, DDIMSampler, NoiseSchedule, SDMUNet

__all__ = ["DiffusionModule", "drop_masks", "output_size"]



def drop_masks(mask: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Replace each sample's mask by zeros with probability ``rate`` (classifier-free guidance training).

    Example:
        >>> m = torch.ones(4, 2, 3, 3)
        >>> drop_masks(m, 1.0).abs().sum().item(), torch.equal(drop_masks(m, 0.0), m)
        (0.0, True)
    """
    keep = torch.rand(mask.shape[0], generator=generator).to(mask.device) >= rate
    return mask * keep.to(mask.dtype).reshape(-1, *([1] * (mask.dim() - 1)))


def output_size(hparams: Mapping[str, Any]) -> tuple[int, int]:
    """``(H, W)`` of a run's images: ``W = crop_size``, ``H = round(crop_size / aspect_ratio)``.

    Example:
        >>> output_size({"crop_size": 64, "aspect_ratio": 2.0})
        (32, 64)
    """
    return round(hparams["crop_size"] / hparams["aspect_ratio"]), int(hparams["crop_size"])


class DiffusionModule(LabelContractModule):
    """Train SDM's UNet (:class:`models.sdm.SDMUNet`) to denoise images given their label maps.

    Architecture arguments left as ``None`` (``label_nc``, ``crop_size``, …) are read from the
    DataModule at ``setup`` and stored in the hyperparameters, so a checkpoint rebuilds the UNet and
    records its label contract without the data.

    Args:
        label_nc: number of label classes (without dontcare / instance channels).
        contain_dontcare_label: one extra channel for the dontcare id ``label_nc``.
        use_instance: append the instance-edge channel.
        dataset_mode: the id convention of the label files.
        palette: ``[[id, r, g, b], ...]`` for colour-coded label files.
        crop_size: training width in pixels.
        aspect_ratio: width / height.
        size: a named UNet size of :data:`models.sdm.SIZES` (``tiny``, ``paper_256``).
        unet: overrides of that size (``model_channels``, ``channel_mult``, ``num_res_blocks``,
            ``attention_ds``, ``head_channels``, ``num_groups``, ``spade_hidden``, ``dropout``).
        timesteps: T, diffusion steps of training (SDM: 1000).
        schedule: ``linear`` (SDM) | ``cosine``.
        prediction: ``eps`` (SDM) | ``v``.
        drop_rate: probability of training on the zero mask, for classifier-free guidance (SDM: 0.2).
        lr: AdamW learning rate (SDM: 1e-4, then 2e-5 when fine-tuning with drop_rate 0.2).
        weight_decay: AdamW weight decay (SDM: 0).
        ema_decay: decay of the EMA denoiser (SDM: 0.9999).
        sample_steps: DDIM steps in validation and the sample grids.
        guidance: guidance scale ``s`` in validation (SDM's convention, :func:`models.sdm.classifier_free_guidance`).

    Raises:
        ValueError: for an unknown ``schedule``/``prediction``, a ``drop_rate`` outside [0, 1], or a
            negative or non-finite learning rate.

    Example:
        >>> module = DiffusionModule(label_nc=3, contain_dontcare_label=False, use_instance=False, crop_size=16,
        ...                          aspect_ratio=1.0, unet={"model_channels": 8, "num_groups": 4, "head_channels": 8,
        ...                                                  "spade_hidden": 8}, sample_steps=2)
        >>> batch = {"label": torch.randint(0, 3, (2, 16, 16)), "image": torch.rand(2, 3, 16, 16) * 2 - 1}
        >>> mask = module.encode_labels(batch)                     # dense one-hot (N, semantic_nc, H, W)
        >>> mask.shape, module.diffusion_loss(batch["image"], mask).ndim
        (torch.Size([2, 3, 16, 16]), 0)
        >>> module.sample(mask).shape                              # DDIM with the EMA denoiser, in [-1, 1]
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        *,
        label_nc: int | None = None,
        contain_dontcare_label: bool | None = None,
        use_instance: bool | None = None,
        dataset_mode: str | None = None,
        palette: list[list[int]] | None = None,
        crop_size: int | None = None,
        aspect_ratio: float | None = None,
        size: str = "tiny",
        unet: dict[str, Any] | None = None,
        timesteps: int = 1000,
        schedule: str = "linear",
        prediction: str = "eps",
        drop_rate: float = 0.2,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        ema_decay: float = 0.9999,
        sample_steps: int = 20,
        guidance: float = 1.5,
    ) -> None:
        super().__init__()
        require_finite_non_negative(type(self).__name__, lr=lr, weight_decay=weight_decay)
        if schedule not in SCHEDULES or prediction not in PREDICTIONS:
            raise ValueError(f"DiffusionModule: schedule must be one of {SCHEDULES} and prediction one of "
                             f"{PREDICTIONS}, got {schedule!r} and {prediction!r}")
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"model.init_args.drop_rate: must be in [0, 1], got {drop_rate}")
        self.save_hyperparameters()
        self.noise_schedule = NoiseSchedule(schedule, timesteps)
        self.denoiser: SDMUNet | None = None
        self.denoiser_ema: SDMUNet | None = None
        if all(self.hparams[k] is not None for k in DATA_KEYS):
            self._build()

    # ----------------------------------------------------------------- building
    @property
    def built(self) -> bool:
        """Whether the networks exist (they are built once the label contract is known)."""
        return self.denoiser is not None

    @staticmethod
    def build_denoiser(hparams: Mapping[str, Any]) -> SDMUNet:
        """The UNet that a run's hyperparameters describe (used by checkpoint readers too)."""
        semantic_nc = LabelLayout.from_dict(hparams).semantic_nc
        return SDMUNet.from_size(hparams["size"], semantic_nc, **(hparams.get("unet") or {}))

    @staticmethod
    def build_sampler(hparams: Mapping[str, Any], denoiser: nn.Module) -> DDIMSampler:
        """``denoiser`` as a generator: DDIM over the run's noise schedule, at its image size."""
        return DDIMSampler(denoiser, NoiseSchedule(hparams["schedule"], hparams["timesteps"]), output_size(hparams),
                           prediction=hparams["prediction"], steps=hparams["sample_steps"],
                           guidance=hparams["guidance"])

    def _build(self) -> None:
        self.denoiser = self.build_denoiser(self.hparams)
        height, width = output_size(self.hparams)
        if height % self.denoiser.divisor or width % self.denoiser.divisor:
            raise ValueError(f"DiffusionModule: the UNet needs image sides that are multiples of "
                             f"{self.denoiser.divisor}, got {(height, width)}; change crop_size or channel_mult")
        self.denoiser_ema = copy.deepcopy(self.denoiser).requires_grad_(False)

    # ----------------------------------------------------------------- training
    def diffusion_loss(self, image: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """DDPM's loss on one batch: MSE of the live UNet's output to ε (or v) at uniform timesteps.

        The masks are dropped (zeroed) with probability ``drop_rate``; ``generator`` (CPU) fixes the
        timesteps, noise and drops (tests).
        """
        h = self.hparams
        n = image.shape[0]
        t = torch.randint(0, h.timesteps, (n,), generator=generator)
        noise = torch.randn(image.shape, generator=generator).to(image)
        x_t = self.noise_schedule.q_sample(image, t, noise)
        output = self.denoiser(x_t, t.to(image.device).float(), drop_masks(mask, h.drop_rate, generator))
        return F.mse_loss(output.float(), self.noise_schedule.target(image, t, noise, h.prediction).float())

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """The diffusion loss of the batch (the EMA steps after each optimiser step)."""
        loss = self.diffusion_loss(batch["image"], self.encode_labels(batch))
        stop_if_not_finite({"train/loss": loss}, self.global_step)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Move the EMA denoiser towards the live one."""
        ema_update(self.denoiser_ema, self.denoiser, self.hparams.ema_decay)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW on the live denoiser (SDM: Adam, lr 1e-4, no weight decay)."""
        return torch.optim.AdamW(self.denoiser.parameters(), lr=self.hparams.lr,
                                 weight_decay=self.hparams.weight_decay)

    # ----------------------------------------------------------------- evaluation
    def sample(self, mask: Tensor, seed: int = 0) -> Tensor:
        """DDIM samples ``(N, 3, H, W)`` in [-1, 1] of the EMA denoiser for the dense ``mask``."""
        noise = torch.randn((mask.shape[0], 3, *mask.shape[-2:]), generator=torch.Generator().manual_seed(seed))
        return self.build_sampler(self.hparams, self.denoiser_ema)(mask, noise.to(mask))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Held-out denoising loss, and the fidelity of DDIM samples to the real images."""
        real, mask = batch["image"], self.encode_labels(batch)
        fake = self.sample(mask, seed=batch_idx)
        gen = torch.Generator().manual_seed(batch_idx)
        metrics = {"val/loss": self.diffusion_loss(real, mask, gen), "val/l1": (fake - real).abs().mean(),
                   "val/class_color_error": class_color_error(fake, real, batch["label"], self.layout.num_ids)}
        self.log_dict(metrics, prog_bar=True, batch_size=real.shape[0], sync_dist=True)

    def sample_columns(self, batch: dict[str, Any]) -> list[Tensor]:
        """Colourised label │ DDIM sample │ real, each ``(N, 3, H, W)`` in [0, 1]."""
        fake = self.sample(self.encode_labels(batch))
        return [colorize_labels(batch["label"], self.layout.num_ids), (fake + 1) / 2, (batch["image"] + 1) / 2]
