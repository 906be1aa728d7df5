r"""The forward (noising) process: beta schedules, :math:`\bar\alpha_t`, ``q_sample`` and the training targets."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["PREDICTIONS", "SCHEDULES", "NoiseSchedule", "beta_schedule"]

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "v")


def beta_schedule(kind: str, timesteps: int) -> Tensor:
    r"""The betas ``(T,)`` (float64) of a ``linear`` or ``cosine`` schedule.

    - ``linear`` (Ho et al. 2020, SDM's): ``β`` from ``1e-4·1000/T`` to ``0.02·1000/T`` evenly
      (``T > 20``, or the last betas reach 1).
    - ``cosine`` (Nichol & Dhariwal 2021): :math:`\bar\alpha(t) = \cos^2\big(\frac{t/T + s}{1 + s}\frac{\pi}{2}\big)`,
      ``s = 0.008``, :math:`\beta_t = \min(1 - \bar\alpha(t+1)/\bar\alpha(t), 0.999)`.

    Example:
        >>> beta_schedule("linear", 1000)[[0, -1]].tolist()
        [0.0001, 0.02]
        >>> beta_schedule("cosine", 10).shape
        torch.Size([10])
    """
    if timesteps < 1:
        raise ValueError(f"beta_schedule: timesteps must be >= 1, got {timesteps}")
    if kind == "linear":
        if timesteps <= 20:
            raise ValueError(f"beta_schedule: the linear schedule needs more than 20 timesteps (its betas reach "
                             f"0.02·1000/T), got {timesteps}; use more timesteps or the cosine schedule")
        scale = 1000.0 / timesteps
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    if kind == "cosine":
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        alpha_bar = torch.cos((steps + 0.008) / 1.008 * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"beta_schedule: kind must be one of {SCHEDULES}, got {kind!r}")


def _per_sample(values: Tensor, like: Tensor) -> Tensor:
    """``(N,)`` → ``(N, 1, 1, …)`` in ``like``'s dtype and device, to broadcast over a sample."""
    return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


class NoiseSchedule:
    r"""The diffusion's :math:`\bar\alpha_t = \prod_{s \le t}(1 - \beta_s)` and what is computed from it.

    ``x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε`` (:meth:`q_sample`); the network predicts ``ε`` or
    ``v = √ᾱ_t ε - √(1-ᾱ_t) x_0`` (Salimans & Ho 2022), and :meth:`split` turns either back into
    ``(x_0, ε)``. Timesteps are integers ``0 … T-1``.

    Args:
        kind: ``linear`` | ``cosine`` (:func:`beta_schedule`).
        timesteps: T.

    Example:
        >>> s = NoiseSchedule("linear", 1000)
        >>> x0, eps, t = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4), torch.tensor([0, 999])
        >>> s.q_sample(x0, t, eps)[:, 0, 0, 0]                  # √(1 - ᾱ_t)
        tensor([0.0100, 1.0000])
        >>> torch.allclose(s.split(s.v_target(x0, t, eps), s.q_sample(x0, t, eps), t, "v")[1], eps)
        True
    """

    def __init__(self, kind: str = "linear", timesteps: int = 1000) -> None:
        self.kind, self.timesteps = kind, timesteps
        self.betas = beta_schedule(kind, timesteps)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, dim=0)

    def alpha_bar(self, t: Tensor) -> Tensor:
        r""":math:`\bar\alpha_t` ``(N,)`` float64 of integer timesteps ``t`` ``(N,)``."""
        return self.alphas_cumprod[t.long().cpu()]

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε`` for images ``(N, …)`` and timesteps ``(N,)``."""
        a = self.alpha_bar(t)
        return _per_sample(a.sqrt(), x0) * x0 + _per_sample((1 - a).sqrt(), x0) * noise

    def v_target(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """The v-prediction target ``√ᾱ_t ε - √(1-ᾱ_t) x_0``."""
        a = self.alpha_bar(t)
        return _per_sample(a.sqrt(), x0) * noise - _per_sample((1 - a).sqrt(), x0) * x0

    def target(self, x0: Tensor, t: Tensor, noise: Tensor, prediction: str) -> Tensor:
        """What a network of this ``prediction`` type (``eps`` | ``v``) learns to output."""
        if prediction == "eps":
            return noise
        if prediction == "v":
            return self.v_target(x0, t, noise)
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")

    def split(self, output: Tensor, x_t: Tensor, t: Tensor, prediction: str) -> tuple[Tensor, Tensor]:
        """``(x_0, ε)`` from a network ``output`` at ``x_t`` (``ε``: ``x_0 = (x_t - √(1-ᾱ)ε)/√ᾱ``; ``v``: both)."""
        a = self.alpha_bar(t)
        sa, s1a = _per_sample(a.sqrt(), x_t), _per_sample((1 - a).sqrt(), x_t)
        if prediction == "eps":
            return (x_t - s1a * output) / sa, output
        if prediction == "v":
            return sa * x_t - s1a * output, sa * output + s1a * x_t
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
