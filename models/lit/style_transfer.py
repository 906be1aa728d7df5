"""Arbitrary style-transfer training (AdaIN, Huang & Belongie 2017; or AdaCoN) as a LightningModule.

The network is :class:`models.adain.StyleTransfer` (frozen VGG encoder, trainable decoder and
modulation), the losses are :func:`models.losses.content_loss` and
:func:`models.losses.style_statistics_loss`, and the schedule is pytorch-AdaIN's: Adam with
``lr / (1 + lr_decay · iteration)``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from models.adain import StyleTransfer
from models.adain.networks import torchvision_init_
from models.lit.crash_safety import require_finite_non_negative, stop_if_not_finite
from models.losses import content_loss, style_statistics_loss

__all__ = ["StyleTransferModule"]


class StyleTransferModule(pl.LightningModule):
    r"""Train a style-transfer decoder (and the AdaCoN modulation) against a frozen VGG encoder.

    .. math::
        \mathcal{L} = \lambda_c \lVert f(g(t)) - t \rVert^2
        + \lambda_s \sum_{l} \lVert \mu(\phi_l(g(t))) - \mu(\phi_l(s)) \rVert^2
        + \lVert \sigma(\phi_l(g(t))) - \sigma(\phi_l(s)) \rVert^2

    with ``t`` the modulated relu4_1 content features and ``l`` over relu1_1 … relu4_1.

    Args:
        modulation: ``"adain"`` or ``"adacon"``.
        encoder_weights: ``"DEFAULT"`` (torchvision VGG-19, downloaded once), a ``VGG19_Weights``
            name, a file (torchvision VGG-19 or AdaIN's ``vgg_normalised.pth``), or ``None`` for a
            random encoder (tests and smoke runs only).
        decoder_weights: optional decoder file to start from (e.g. the published ``decoder.pth``).
        style_dim: AdaCoN style-code size.
        style_hidden: width of AdaCoN's style encoder.
        adacon_kernel_size: AdaCoN's predicted kernel size.
        adacon_groups: AdaCoN's pointwise groups (``None``: its default).
        adacon_local_window: AdaCoN's local standardisation window (``None``: global).
        lr: Adam learning rate (1e-4).
        lr_decay: inverse-time decay, ``lr / (1 + lr_decay · step)`` (5e-5).
        style_weight: λ_s (10; retune for torchvision VGG, whose activations are scaled differently).
        content_weight: λ_c (1).
        unbiased: ``n − 1`` variance in AdaIN and the style loss (pytorch-AdaIN).
        eps: variance epsilon.

    Raises:
        ValueError: if ``lr``, ``lr_decay`` or a loss weight is NaN, infinite or negative.
    """

    def __init__(self, modulation: str = "adain", encoder_weights: str | None = "DEFAULT",
                 decoder_weights: str | None = None, style_dim: int = 64, style_hidden: int = 256,
                 adacon_kernel_size: int = 3, adacon_groups: int | None = None,
                 adacon_local_window: int | None = None, lr: float = 1e-4, lr_decay: float = 5e-5,
                 style_weight: float = 10.0, content_weight: float = 1.0, unbiased: bool = True,
                 eps: float = 1e-5) -> None:
        super().__init__()
        require_finite_non_negative(type(self).__name__, lr=lr, lr_decay=lr_decay, style_weight=style_weight,
                                    content_weight=content_weight)
        self.save_hyperparameters()
        self.net = StyleTransfer(modulation=modulation, style_dim=style_dim, style_hidden=style_hidden,
                                 adacon_kernel_size=adacon_kernel_size, adacon_groups=adacon_groups,
                                 adacon_local_window=adacon_local_window, eps=eps, unbiased=unbiased)
        if encoder_weights is None:
            torchvision_init_(self.net.encoder)
        else:
            self.net.load_encoder(encoder_weights)
        if decoder_weights is not None:
            self.net.load_decoder(decoder_weights)

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Content, style and total loss for a ``{"content", "style"}`` batch."""
        h, net = self.hparams, self.net
        content, style = batch["content"], batch["style"]
        with torch.no_grad():
            style_feats = net.encoder(style)
            content_feat = net.encoder.encode(content)
        t = net.modulation(content_feat, style_feats[-1])
        output = net.decoder(t)[..., : content.shape[-2], : content.shape[-1]]
        output_feats = net.encoder(output)
        loss_c = content_loss(output_feats[-1], t.detach())
        loss_s = style_statistics_loss(output_feats, style_feats, eps=h.eps, unbiased=h.unbiased)
        total = h.content_weight * loss_c + h.style_weight * loss_s
        return {"content": loss_c, "style": loss_s, "loss": total}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """The total loss; a NaN/Inf loss stops training before the update (FloatingPointError)."""
        losses = self.losses(batch)
        stop_if_not_finite(losses, self.global_step)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True,
                      batch_size=batch["content"].shape[0])
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses = self.losses(batch)
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, batch_size=batch["content"].shape[0])

    def sample_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """Columns content │ style │ result for :class:`models.lit.callbacks.SampleGrids`."""
        return [batch["content"], batch["style"], self.net.transfer(batch["content"], batch["style"])]

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.hparams.lr)
        decay = self.hparams.lr_decay
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + decay * step))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
