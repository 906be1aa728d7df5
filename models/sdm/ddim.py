r"""DDIM sampling (Song et al. 2021) with classifier-free guidance (Ho & Salimans 2021) as SDM defines it.

SDM's guidance (``guided_diffusion/gaussian_diffusion.py``, ``p_mean_variance``, scale ``s``):
``ε = ε(x_t, 0) + s·(ε(x_t, m) - ε(x_t, 0))`` with the all-zeros mask as the unconditional input;
``s = 1`` is the plain conditional model (SDM then skips the second call) and the paper samples
ADE20K with ``s = 1.5``. Here the same formula holds for every ``s`` (``s = 0``: unconditional).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .schedule import NoiseSchedule

__all__ = ["Denoiser", "classifier_free_guidance", "ddim_sample", "ddim_step", "ddim_timesteps"]

Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(x_t (N, 3, H, W), t (N,) float, mask (N, L, H, W)) → output (N, 3, H, W)`` (ε or v)."""


def classifier_free_guidance(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """``uncond + scale · (cond - uncond)``: SDM's guided prediction (``scale`` = its ``s``).

    Example:
        >>> classifier_free_guidance(torch.tensor([2.0]), torch.tensor([1.0]), 1.5)
        tensor([2.5000])
    """
    return uncond + scale * (cond - uncond)


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """The ``steps`` timesteps DDIM visits, evenly spread over ``0 … T-1``, last first.

    Example:
        >>> ddim_timesteps(1000, 5)
        [999, 749, 500, 250, 0]
    """
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be between 1 and the {timesteps} training timesteps, got {steps}")
    grid = torch.linspace(0, timesteps - 1, steps, dtype=torch.float64).round().long()
    return sorted({int(t) for t in grid}, reverse=True)


def ddim_step(x0: Tensor, eps: Tensor, alpha_bar: Tensor, alpha_bar_prev: Tensor, *, eta: float = 0.0,
              noise: Tensor | None = None) -> Tensor:
    r"""One DDIM update to the previous timestep (Song et al. eq. 12).

    .. math::
        x_{t'} = \sqrt{\bar\alpha_{t'}}\,x_0 + \sqrt{1 - \bar\alpha_{t'} - \sigma^2}\,\varepsilon + \sigma z

    .. math::
        \sigma = \eta\sqrt{(1 - \bar\alpha_{t'})/(1 - \bar\alpha_t)}\sqrt{1 - \bar\alpha_t/\bar\alpha_{t'}}

    Args:
        x0: the predicted clean image ``(N, C, H, W)``.
        eps: the predicted noise, same shape.
        alpha_bar: ``ᾱ_t`` ``(N,)``.
        alpha_bar_prev: ``ᾱ_{t'}`` ``(N,)`` (1 after the last step).
        eta: 0 is deterministic DDIM, 1 is DDPM's ancestral variance.
        noise: ``z`` (needed when ``eta > 0``).

    Example:
        >>> x0, eps = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
        >>> ddim_step(x0, eps, torch.tensor([0.25]), torch.tensor([0.64]))
        tensor([[[[0.8000]]]])
    """
    shape = (-1,) + (1,) * (x0.dim() - 1)
    a = alpha_bar.to(x0.device, x0.dtype).reshape(shape)
    a_prev = alpha_bar_prev.to(x0.device, x0.dtype).reshape(shape)
    sigma = eta * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()
    x = a_prev.sqrt() * x0 + (1 - a_prev - sigma ** 2).clamp(min=0).sqrt() * eps
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step: eta > 0 needs noise")
        x = x + sigma * noise
    return x


def ddim_sample(denoiser: Denoiser, schedule: NoiseSchedule, noise: Tensor, mask: Tensor, *, steps: int = 50,
                guidance: float = 1.0, prediction: str = "eps", eta: float = 0.0, clip: bool = True,
                generator: torch.Generator | None = None,
                callback: Callable[[int], None] | None = None) -> Tensor:
    """Denoise ``noise`` into images for ``mask`` in ``steps`` DDIM steps, with guidance.

    With ``guidance != 1`` the conditional and unconditional (zero-mask) inputs go through the
    denoiser as one batch of ``2N``. ``x_0`` is clipped to [-1, 1] and ``ε`` re-derived from it
    (``clip``), as SDM's ``clip_denoised``.

    Args:
        denoiser: ``(x_t, t, mask) → ε or v`` (:data:`Denoiser`): a module or an ONNX session.
        schedule: the training noise schedule.
        noise: ``x_T`` ``(N, 3, H, W)``.
        mask: the dense mask ``(N, L, H, W)``.
        steps: DDIM steps.
        guidance: SDM's ``s`` (:func:`classifier_free_guidance`).
        prediction: what the denoiser outputs, ``eps`` | ``v``.
        eta: DDIM's η (0: deterministic).
        clip: clip ``x_0`` to [-1, 1] at every step.
        generator: draws ``z`` when ``eta > 0``.
        callback: called with the step index after every step (a progress bar).

    Returns:
        ``x_0`` ``(N, 3, H, W)`` in [-1, 1] (with ``clip``).

    Example:
        >>> s = NoiseSchedule("linear", 100)
        >>> out = ddim_sample(lambda x, t, m: torch.zeros_like(x), s, torch.randn(2, 3, 4, 4),
        ...                   torch.ones(2, 1, 4, 4), steps=5)
        >>> out.shape
        torch.Size([2, 3, 4, 4])
    """
    x, n = noise, noise.shape[0]
    guided = guidance != 1.0
    masks = torch.cat([mask, torch.zeros_like(mask)]) if guided else mask
    times = ddim_timesteps(schedule.timesteps, steps)
    for i, t in enumerate(times):
        tt = torch.full((n,), t, dtype=torch.long)
        t_in = torch.full((2 * n if guided else n,), float(t), dtype=x.dtype, device=x.device)
        out = denoiser(torch.cat([x, x]) if guided else x, t_in, masks)
        if guided:
            out = classifier_free_guidance(out[:n], out[n:], guidance)
        x0, eps = schedule.split(out, x, tt, prediction)
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = _eps_from_x0(schedule, x, x0, tt)
        a = schedule.alpha_bar(tt)
        a_prev = schedule.alpha_bar(torch.full((n,), times[i + 1])) if i + 1 < len(times) else torch.ones(n)
        z = torch.randn(x.shape, generator=generator).to(x) if eta > 0 else None
        x = ddim_step(x0, eps, a, a_prev.to(a), eta=eta, noise=z)
        if callback is not None:
            callback(i)
    return x


def _eps_from_x0(schedule: NoiseSchedule, x_t: Tensor, x0: Tensor, t: Tensor) -> Tensor:
    """``ε = (x_t - √ᾱ x_0) / √(1-ᾱ)``: the noise consistent with a clipped ``x_0``."""
    a = schedule.alpha_bar(t).to(x_t.device, x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()
