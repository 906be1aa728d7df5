"""A denoiser and its noise schedule as a mask → image generator (DDIM with guidance)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .ddim import Denoiser, ddim_sample
from .schedule import NoiseSchedule

__all__ = ["DDIMSampler"]


class DDIMSampler(nn.Module):
    """``(mask, x_T) → image``: :func:`~models.sdm.ddim.ddim_sample` over a denoiser.

    The app layer treats it as a generator: ``steps``, ``guidance`` and ``eta`` are plain
    attributes to change between calls; ``progress`` (if set) is called after every step.

    Args:
        denoiser: ``(x_t, t, mask) → ε or v``: an :class:`~models.sdm.unet.SDMUNet` (a submodule) or
            any callable (an ONNX session).
        schedule: the training noise schedule.
        output_size: ``(H, W)`` the denoiser was trained at.
        prediction: ``eps`` | ``v``.
        steps: DDIM steps.
        guidance: SDM's guidance scale ``s`` (1: conditional only).
        eta: DDIM's η.

    Shape:
        - mask: ``(N, L, H, W)`` dense
        - noise: ``(N, 3, H, W)``
        - output: ``(N, 3, H, W)`` in [-1, 1]

    Example:
        >>> from models.sdm import SDMUNet
        >>> sampler = DDIMSampler(SDMUNet.from_size("tiny", label_nc=4), NoiseSchedule("cosine", 100), (32, 32),
        ...                       steps=3, guidance=1.5)
        >>> sampler(torch.rand(2, 4, 32, 32), torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, denoiser: Denoiser, schedule: NoiseSchedule, output_size: tuple[int, int], *,
                 prediction: str = "eps", steps: int = 50, guidance: float = 1.0, eta: float = 0.0) -> None:
        super().__init__()
        self.denoiser, self.schedule, self.output_size = denoiser, schedule, tuple(output_size)
        self.prediction, self.steps, self.guidance, self.eta = prediction, steps, guidance, eta
        self.progress: Callable[[int], None] | None = None

    def forward(self, mask: Tensor, noise: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Sample images for the dense ``mask`` starting from ``noise``."""
        return ddim_sample(self.denoiser, self.schedule, noise, mask, steps=self.steps, guidance=self.guidance,
                           prediction=self.prediction, eta=self.eta, generator=generator, callback=self.progress)
