"""Mask-to-image GAN training (SPADE, Park et al. 2019; CLADE; SEAN/RAIN) as a LightningModule.

The module only composes: the networks come from ``models/spade`` and ``models/sean`` (chosen
by name through :mod:`models.generators`), the losses from
``models/losses.py`` and the label encoding from ``models/data``. One generator forward per
step is reused (detached) for the discriminator step, as in the official trainer.
``discriminator: oasis`` swaps in OASIS (Schönfeld, Sushko et al. 2021, :mod:`models.oasis`):
its U-Net segmenter discriminator, (N+1)-class losses with LabelMix, and 3-D noise for the generator.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

import condnorm
from condnorm import SemanticMap
from models.data.palette import colorize_labels
from models.generators import generator_from_hparams, generator_kind
from models.lit.crash_safety import require_finite_non_negative, stop_if_not_finite
from models.lit.ema import ema_update, warmup_decay
from models.lit.label_contract import DATA_KEYS, LabelContractModule
from models.losses import GANLoss, VGGPerceptualLoss, feature_matching_loss, kld_loss
from models.metrics import class_color_error, optional_fid, optional_lpips
from models.oasis import (
    BALANCE_MODES,
    LAMBDA_LABELMIX,
    NOISE_MODES,
    OASISDiscriminator,
    discriminator_loss,
    generator_loss,
    labelmix,
    labelmix_loss,
    labelmix_mask,
)
from models.spade import ConvEncoder, MultiscaleDiscriminator
from models.spade.encoder import reparameterize

__all__ = ["MaskToImageModule"]

DISCRIMINATORS = ("multiscale", "oasis")


class MaskToImageModule(LabelContractModule):
    """Train a SPADE, CLADE or RAIN (SEAN) generator against a multiscale discriminator.

    All three share the data, the discriminator and the losses. ``generator: rain`` trains
    as SEAN does: the generator reconstructs the real image from the region style codes its
    encoder pools from that same image (and is validated the same way).

    Architecture arguments left as ``None`` (``label_nc``, ``crop_size``, …) are read from the
    DataModule at ``setup`` and stored in the hyperparameters, so checkpoints rebuild the
    same networks without the data and record the whole label contract
    (:attr:`layout`: ids, don't-care, id shift, instance edges, palette) for inference.

    Args:
        label_nc: number of label classes (without dontcare / instance channels).
        contain_dontcare_label: one extra channel for the dontcare id ``label_nc``.
        use_instance: append the instance-edge channel.
        dataset_mode: the id convention of the label files (``ade20k`` ids are 1-based).
        palette: ``[[id, r, g, b], ...]`` for colour-coded label files.
        crop_size: training width in pixels.
        aspect_ratio: width / height.
        generator: ``spade`` | ``clade`` | ``rain`` (alias ``sean``), see :mod:`models.generators`.
        ngf: generator width (64 in the paper).
        z_dim: latent size for the VAE path; with ``discriminator: oasis``, the 3-D noise channels
            (64 in OASIS) added to the generator's input.
        style_dim: length of a region's style code (``rain`` only; 512 in SEAN).
        num_upsampling_layers: ``normal`` | ``more`` | ``most``.
        norm_G: parameter-free norm inside the conditional norms (``syncbatch`` in the paper).
        use_vae: train with the style encoder and KL loss.
        discriminator: ``multiscale`` (SPADE's, with ``gan_mode``, feature matching) or ``oasis``
            (:class:`models.oasis.OASISDiscriminator` over the ``num_ids`` classes + "fake", trained
            with the class-balanced (N+1)-class cross-entropy and LabelMix; G gets the dense label
            map + fresh 3-D noise on every call, :class:`models.oasis.OASISGenerator`; generators
            ``spade`` | ``clade``, no ``use_vae``; ``lambda_feat`` must be 0).
        ndf: discriminator width (OASIS: down blocks ``2, 2, 4, 4, 8, 8 × ndf``, last up block ``ndf``:
            the paper's 128…512 and 64 at ``ndf=64``).
        num_D: number of discriminator scales (multiscale).
        n_layers_D: layers per discriminator (multiscale).
        n_blocks_D: down blocks of the OASIS U-Net (6 in the paper; the image's sides must be
            multiples of ``2 ** n_blocks_D``).
        noise_mode: OASIS 3-D noise, ``pixel`` (a vector per pixel, the paper's) | ``region``.
        lambda_labelmix: weight of the LabelMix regulariser in the OASIS D loss (10 in the paper).
        class_balance: the OASIS class weights α_c (:func:`models.oasis.class_balance_weights`):
            ``paper`` (the paper's inverse pixel frequency in the batch), ``code`` (the public code's,
            also ÷ the number of classes present) or ``none`` (every class 1, the public code's
            ``--no_balancing_inloss``). Balancing favours rare classes at their borders: on the
            shapes demo it grows every shape by about a pixel (docs/oasis.md).
        gan_mode: ``hinge`` | ``ls`` | ``original`` | ``wgan``.
        lambda_feat: feature-matching weight (10).
        lambda_vgg: VGG perceptual weight (10; 0 disables it and needs no weights).
        vgg_weights: ``"DEFAULT"`` (torchvision download) or a local state-dict path.
        lambda_kld: KL weight (0.05).
        lr_g: generator learning rate (TTUR: 1e-4).
        lr_d: discriminator learning rate (TTUR: 4e-4).
        betas: Adam betas ((0, 0.9) per the authors).
        accumulate_grad_batches: step G and D every k batches with the losses scaled by 1/k, an
            effective batch of k × batch_size (the paper's 32 on small GPUs); the Trainer's flag of
            that name does not apply to this manually optimised module.
        decay_epochs: the last epochs over which both LRs decay linearly to 0 (0 = constant).
        ema_decay: keep an exponential moving average of the generator (e.g. 0.999); ``None`` off.
        ema_warmup: average with ``min(ema_decay, (1 + t) / (10 + t))`` at global step ``t``, so the
            average forgets the random initial weights within the first steps (a short run's EMA
            generator is otherwise mostly its initialisation: 0.999**1000 = 37 %); off: the plain
            ``ema_decay`` from the first step, as the OASIS code does.
        ema_recalibrate_batches: batches used to re-estimate the EMA generator's norm statistics
            before each validation.
        lpips: compute LPIPS in validation when its weights are available.
        fid_weights: a local Inception weights file to compute FID in validation.

    The LPIPS and FID networks are created at the first validation and kept outside the module
    tree (moved to the module's device before each validation), so they never enter
    ``state_dict`` or checkpoints: a run with them on resumes like one without.

    Raises:
        ValueError: if a learning rate or a loss weight (``lambda_*``) is NaN, infinite or negative.
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
        generator: str = "spade",
        ngf: int = 64,
        z_dim: int = 256,
        style_dim: int = 512,
        num_upsampling_layers: str = "normal",
        norm_G: str = "syncbatch",
        use_vae: bool = False,
        discriminator: str = "multiscale",
        ndf: int = 64,
        num_D: int = 2,
        n_layers_D: int = 4,
        n_blocks_D: int = 6,
        noise_mode: str = "pixel",
        lambda_labelmix: float = LAMBDA_LABELMIX,
        class_balance: str = "paper",
        gan_mode: str = "hinge",
        lambda_feat: float = 10.0,
        lambda_vgg: float = 10.0,
        vgg_weights: str | None = "DEFAULT",
        lambda_kld: float = 0.05,
        lr_g: float = 1e-4,
        lr_d: float = 4e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        accumulate_grad_batches: int = 1,
        decay_epochs: int = 0,
        ema_decay: float | None = None,
        ema_warmup: bool = True,
        ema_recalibrate_batches: int = 0,
        lpips: bool = True,
        fid_weights: str | None = None,
    ) -> None:
        super().__init__()
        require_finite_non_negative(type(self).__name__, lambda_feat=lambda_feat, lambda_vgg=lambda_vgg,
                                    lambda_kld=lambda_kld, lr_g=lr_g, lr_d=lr_d, lambda_labelmix=lambda_labelmix)
        if discriminator not in DISCRIMINATORS:
            raise ValueError(f"MaskToImageModule: discriminator must be one of {DISCRIMINATORS}, got {discriminator!r}")
        self._oasis = discriminator == "oasis"
        if self._oasis:
            if noise_mode not in NOISE_MODES:
                raise ValueError(f"MaskToImageModule: noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
            if class_balance not in BALANCE_MODES:
                raise ValueError(f"MaskToImageModule: class_balance must be one of {BALANCE_MODES}, "
                                 f"got {class_balance!r}")
            if lambda_feat > 0:
                raise ValueError("MaskToImageModule: the OASIS discriminator has no feature maps to match; "
                                 "set lambda_feat: 0 with discriminator: oasis")
            if generator_kind(generator)[1].takes_style or use_vae:
                raise ValueError(f"MaskToImageModule: discriminator 'oasis' trains spade | clade generators "
                                 f"without use_vae (got generator {generator!r}, use_vae {use_vae})")
        self.save_hyperparameters()
        # Metric networks (LPIPS, FID): a plain dict, so not submodules and not in state_dict.
        self._metric_nets: dict[str, nn.Module | None] = {}
        self._takes_style = generator_kind(generator)[1].takes_style
        if self._takes_style and use_vae:
            raise ValueError(f"MaskToImageModule: generator {generator!r} takes its style from region codes; "
                             "use_vae applies to spade/clade only")
        if accumulate_grad_batches < 1:
            raise ValueError(f"MaskToImageModule: accumulate_grad_batches must be >= 1, "
                             f"got {accumulate_grad_batches}")
        self.automatic_optimization = False
        self.gan_loss = GANLoss(gan_mode)
        self.vgg_loss = VGGPerceptualLoss(weights=vgg_weights) if lambda_vgg > 0 else None
        self.generator: nn.Module | None = None
        if all(self.hparams[k] is not None for k in DATA_KEYS):
            self._build()

    # ----------------------------------------------------------------- building
    @property
    def built(self) -> bool:
        """Whether the networks exist (they are built once the label contract is known)."""
        return self.generator is not None

    def _build(self) -> None:
        h = self.hparams
        if self._takes_style and h.use_instance:
            raise ValueError(f"MaskToImageModule: generator {h.generator!r} gives every input channel a "
                             "style code, so it trains without instance edges (as SEAN); set "
                             "data.init_args.no_instance: true")
        self.generator = generator_from_hparams(h, self.layout.semantic_nc)
        if self._oasis:
            mults = (2, 2, 4, 4, 8, 8)
            widths = [h.ndf * mults[min(i, len(mults) - 1)] for i in range(h.n_blocks_D)]
            self.discriminator = OASISDiscriminator(self.layout.num_ids, widths=widths, last_width=h.ndf)
            height, width = self.generator.output_size
            if height % self.discriminator.divisor or width % self.discriminator.divisor:
                raise ValueError(f"MaskToImageModule: the OASIS discriminator's {h.n_blocks_D} down blocks need "
                                 f"image sides that are multiples of {self.discriminator.divisor}, got "
                                 f"{(height, width)}; lower n_blocks_D or change crop_size")
        else:
            self.discriminator = MultiscaleDiscriminator(self.layout.semantic_nc + 3, num_D=h.num_D,
                                                         n_layers=h.n_layers_D, ndf=h.ndf)
        self.encoder = ConvEncoder(ngf=h.ngf, z_dim=h.z_dim) if h.use_vae else None
        self.generator_ema = (copy.deepcopy(self.generator).requires_grad_(False)
                              if h.ema_decay is not None else None)

    # ----------------------------------------------------------------- helpers
    def generator_input(self, batch: dict[str, Tensor]) -> Tensor | SemanticMap:
        """The generator's input: ids (a :class:`condnorm.SemanticMap`) for SPADE/CLADE, dense for RAIN/OASIS."""
        if self._takes_style or self._oasis:
            return self.encode_labels(batch)
        return self.layout.semantic_map(batch["label"], batch.get("instance"))

    def _synthesize(self, net: nn.Module, seg: Tensor | SemanticMap, real: Tensor) -> Tensor:
        """RAIN reconstructs ``real`` from its own region codes; the others map the labels alone."""
        return net(seg, style_image=real) if self._takes_style else net(seg)

    def _generate(self, seg: Tensor | SemanticMap, real: Tensor | None,
                  net: nn.Module) -> tuple[Tensor, Tensor | None]:
        if self.encoder is None or real is None:
            return self._synthesize(net, seg, real), None
        mu, logvar = self.encoder(real)
        return net(seg, z=reparameterize(mu, logvar)), kld_loss(mu, logvar) * self.hparams.lambda_kld

    def _discriminate(self, seg: Tensor, fake: Tensor, real: Tensor) -> tuple[list, list]:
        both = self.discriminator(torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)]))
        n = fake.shape[0]
        return ([[f[:n] for f in scale] for scale in both], [[f[n:] for f in scale] for scale in both])

    # ----------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """One generator step, then one discriminator step on the same (detached) fakes.

        The objectives are the multiscale GAN's (:meth:`_gan_generator_losses`,
        :meth:`_gan_discriminator_losses`) or OASIS's (:meth:`oasis_generator_losses`,
        :meth:`oasis_discriminator_losses`). With ``accumulate_grad_batches = k`` the gradients of
        k batches add up (losses / k) and both steps happen on every k-th batch (and the last of
        the epoch).
        """
        h = self.hparams
        opt_g, opt_d = self.optimizers()
        k = h.accumulate_grad_batches
        first = batch_idx % k == 0
        last = (batch_idx + 1) % k == 0 or batch_idx + 1 == self.trainer.num_training_batches
        seg, real = self.encode_labels(batch), batch["image"]

        with self.toggled_optimizer(opt_g):
            if self._oasis:
                fake = self.generator(seg)  # the dense map; fresh 3-D noise on every call
                g = self.oasis_generator_losses(batch["label"], fake, real)
            else:
                fake, g = self._gan_generator_losses(batch, seg, real)
            loss_g = sum(g.values())
            self._optimise(opt_g, g, loss_g, first=first, last=last)
        if last:
            self._update_ema()

        with self.toggled_optimizer(opt_d):
            if self._oasis:
                label = batch["label"]
                d = self.oasis_discriminator_losses(label, fake.detach(), real, labelmix_mask(label))
            else:
                d = self._gan_discriminator_losses(seg, fake.detach(), real)
            self._optimise(opt_d, d, sum(d.values()), first=first, last=last)

        self.log_dict({**g, **d, "G/total": loss_g}, prog_bar=False, batch_size=real.shape[0])
        self.log("loss_g", loss_g, prog_bar=True, batch_size=real.shape[0])

    def _optimise(self, optimizer: torch.optim.Optimizer, losses: dict[str, Tensor], total: Tensor, *,
                  first: bool, last: bool) -> None:
        """Stop on a non-finite loss, then accumulate ``total / k`` and step on the k-th batch."""
        stop_if_not_finite(losses, self.global_step)
        if first:
            optimizer.zero_grad(set_to_none=True)
        self.manual_backward(total / self.hparams.accumulate_grad_batches)
        if last:
            optimizer.step()

    def _gan_generator_losses(self, batch: dict[str, Any], seg: Tensor,
                              real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The fakes and SPADE's G losses: hinge (or ``gan_mode``), feature matching, VGG, KL."""
        h = self.hparams
        fake, kld = self._generate(self.generator_input(batch), real, self.generator)
        pred_fake, pred_real = self._discriminate(seg, fake, real)
        g = {"G/gan": self.gan_loss(pred_fake, True, for_discriminator=False)}
        if h.lambda_feat > 0:
            g["G/feat"] = feature_matching_loss(pred_fake, pred_real) * h.lambda_feat
        if self.vgg_loss is not None:
            g["G/vgg"] = self.vgg_loss(fake, real) * h.lambda_vgg
        if kld is not None:
            g["G/kld"] = kld
        return fake, g

    def _gan_discriminator_losses(self, seg: Tensor, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """SPADE's D losses on the detached fakes and the real images."""
        pred_fake, pred_real = self._discriminate(seg, fake, real)
        return {"D/fake": self.gan_loss(pred_fake, False, for_discriminator=True),
                "D/real": self.gan_loss(pred_real, True, for_discriminator=True)}

    @property
    def _ignore_index(self) -> int | None:
        """The don't-care id, left out of the OASIS class terms (weight 0, as in the paper)."""
        return self.layout.label_nc if self.layout.contain_dontcare_label else None

    def oasis_generator_losses(self, label: Tensor, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """OASIS G loss: class-balanced cross-entropy of ``D(fake)`` to the label's classes (+ optional VGG)."""
        g = {"G/oasis": generator_loss(self.discriminator(fake), label, ignore_index=self._ignore_index,
                                        mode=self.hparams.class_balance)}
        if self.vgg_loss is not None:
            g["G/vgg"] = self.vgg_loss(fake, real) * self.hparams.lambda_vgg
        return g

    def oasis_discriminator_losses(self, label: Tensor, fake: Tensor, real: Tensor,
                                   mask: Tensor) -> dict[str, Tensor]:
        """OASIS D loss: (N+1)-class cross-entropy (real → its class, fake → "fake") + λ · LabelMix.

        ``fake`` (detached), ``real`` and their LabelMix with ``mask`` go through D in one pass.
        """
        n = real.shape[0]
        logits = self.discriminator(torch.cat([fake, real, labelmix(real, fake, mask)]))
        logits_fake, logits_real, logits_mixed = logits[:n], logits[n:2 * n], logits[2 * n:]
        return {"D/oasis": discriminator_loss(logits_real, logits_fake, label, ignore_index=self._ignore_index,
                                              mode=self.hparams.class_balance),
                "D/labelmix": labelmix_loss(logits_mixed, logits_real, logits_fake, mask)
                * self.hparams.lambda_labelmix}

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        decay = self.hparams.ema_decay
        if self.hparams.ema_warmup:
            decay = warmup_decay(decay, self.global_step)
        ema_update(self.generator_ema, self.generator, decay)

    def on_train_epoch_end(self) -> None:
        """Step the linear LR decay once per epoch."""
        for sched in self.lr_schedulers() or []:
            sched.step()

    def configure_optimizers(self) -> tuple[list, list]:
        """Adam for G (and E) and D with TTUR rates; linear decay over ``decay_epochs``."""
        h = self.hparams
        g_params = list(self.generator.parameters())
        if self.encoder is not None:
            g_params += list(self.encoder.parameters())
        opt_g = torch.optim.Adam(g_params, lr=h.lr_g, betas=tuple(h.betas))
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=h.lr_d, betas=tuple(h.betas))
        max_epochs = self.trainer.max_epochs if self.trainer and self.trainer.max_epochs else 0
        start = max(max_epochs - h.decay_epochs, 0) if h.decay_epochs else None

        def factor(epoch: int) -> float:
            if start is None or epoch < start:
                return 1.0
            return max(0.0, 1.0 - (epoch - start + 1) / (h.decay_epochs + 1))

        scheds = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], scheds

    # ----------------------------------------------------------------- evaluation
    @property
    def inference_generator(self) -> nn.Module:
        """The EMA generator when there is one, else the trained generator."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def on_validation_epoch_start(self) -> None:
        """Re-estimate the EMA generator's norm statistics; create the optional metrics."""
        if self.generator_ema is not None and self.hparams.ema_recalibrate_batches:
            loader = self.trainer.train_dataloader
            if loader is None and self.trainer.datamodule is not None:  # validate/test without a fit
                loader = self.trainer.datamodule.train_dataloader()
            on_device = (self.transfer_batch_to_device(b, self.device, 0)
                         for _, b in zip(range(self.hparams.ema_recalibrate_batches), loader))
            batches = ((self.generator_input(b), b["image"]) for b in on_device)
            condnorm.recalibrate(self.generator_ema, batches,
                                 forward=lambda net, b: self._synthesize(net, *b))
        if not self._metric_nets:
            self._metric_nets = {
                "lpips": optional_lpips() if self.hparams.lpips else None,
                "fid": optional_fid(self.hparams.fid_weights) if self.hparams.fid_weights else None}
        for metric in self._metric_nets.values():
            if metric is not None:
                metric.to(self.device)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Fidelity of generated images to the held-out real ones."""
        real = batch["image"]
        fake = self._synthesize(self.inference_generator, self.generator_input(batch), real)
        n = real.shape[0]
        metrics = {"val/l1": (fake - real).abs().mean(),
                   "val/class_color_error": class_color_error(fake, real, batch["label"],
                                                              self.layout.num_ids)}
        lpips, fid = self._metric_nets["lpips"], self._metric_nets["fid"]
        if lpips is not None:
            metrics["val/lpips"] = lpips(fake, real).mean()
        if fid is not None:
            fid.update((real + 1) / 2, real=True)
            fid.update((fake.clamp(-1, 1) + 1) / 2, real=False)
        self.log_dict(metrics, prog_bar=True, batch_size=n, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        """Report FID over the whole validation set."""
        fid = self._metric_nets["fid"]
        if fid is not None:
            self.log("val/fid", fid.compute(), sync_dist=True)
            fid.reset()

    def sample_columns(self, batch: dict[str, Any]) -> list[Tensor]:
        """Colourised label │ generated │ real, each ``(N, 3, H, W)`` in [0, 1]."""
        fake = self._synthesize(self.inference_generator, self.generator_input(batch), batch["image"])
        return [colorize_labels(batch["label"], self.layout.num_ids), (fake + 1) / 2,
                (batch["image"] + 1) / 2]
