"""The exponential moving average of a network's weights (the EMA generator / denoiser)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ema_update", "warmup_decay"]


@torch.no_grad()
def ema_update(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """``ema ← decay · ema + (1 - decay) · live`` for floating tensors; other buffers are copied.

    Example:
        >>> a, b = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
        >>> _ = nn.init.zeros_(a.weight), nn.init.ones_(b.weight)
        >>> ema_update(a, b, 0.9); round(a.weight.item(), 6)
        0.1
    """
    live_state = live.state_dict()
    for key, value in ema.state_dict().items():
        if value.is_floating_point():
            value.lerp_(live_state[key].to(value.dtype), 1.0 - decay)
        else:
            value.copy_(live_state[key])


def warmup_decay(decay: float, step: int) -> float:
    """``min(decay, (1 + step) / (10 + step))``: an average that forgets the initial weights in the first steps.

    Without it, a short run's average is mostly its random initialisation (``0.999**1000`` = 37 %).

    Example:
        >>> warmup_decay(0.999, 0), round(warmup_decay(0.999, 90), 2), warmup_decay(0.999, 10**6)
        (0.1, 0.91, 0.999)
    """
    return min(decay, (1 + step) / (10 + step))
